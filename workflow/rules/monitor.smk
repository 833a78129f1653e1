# What the runs did: each pretraining run's curves, and every probe result in one CSV.
#
#   snakemake --cores 1 monitor                     # for every run and result on disk now
#   snakemake --report report.html                  # the curves appear under "Runs"
#
# results/<run>/metrics.png: loss, prediction and SIGReg terms, online probe accuracy,
# learning rate and throughput per epoch, from runs/<run>/metrics.csv.
# results/all.csv: one line per results/<run>/<probe>/<dataset>.json.
# Both read what is on disk now, and never start a pretraining or a probe: the files are
# params (path and modification time), not inputs, so an update reruns the plot and a
# run that is still training is plotted as far as it has got.


rule run_metrics:
    output:
        png=report(
            "results/{run}/metrics.png",
            caption="../report/run_metrics.rst",
            category="Runs",
        ),
    log:
        "logs/monitor/{run}.log",
    wildcard_constraints:
        run=r"[^/]+",
    localrule: True
    conda:
        "../envs/tables.yaml"
    params:
        metrics=lambda wc: file_and_mtime(f"runs/{wc.run}/metrics.csv"),
    script:
        "../scripts/run_metrics.py"


rule results_csv:
    output:
        csv="results/all.csv",
    log:
        "logs/monitor/results_csv.log",
    localrule: True
    conda:
        "../envs/tables.yaml"
    params:
        results=[file_and_mtime(path) for path in existing_results()],
    script:
        "../scripts/results_csv.py"


rule monitor:
    """The curves of every run that has a metrics.csv, and results/all.csv."""
    input:
        expand("results/{run}/metrics.png", run=runs_with_metrics()),
        "results/all.csv",
