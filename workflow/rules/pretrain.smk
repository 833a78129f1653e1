# LeJEPA pretraining: one job per run of config/pretrain.yaml (`pretrain.runs`).
#
#   snakemake --cores all runs/cifar10_resnet18/final.pt
#
# Outputs: runs/<run>/final.pt (written last, only when training has finished) and
# runs/<run>/metrics.csv. runs/<run>/checkpoint.pt is deliberately not an output:
# Snakemake deletes the outputs of a failed or interrupted job, and the checkpoint
# must survive so that rerunning the job resumes where it stopped. The params hold
# only this run's resolved settings, so editing one run (or its scale) reruns only
# the runs concerned; a run whose training settings changed starts afresh.
#
# A preempted, killed or timed-out job is retried (`retries`), and the retry resumes
# from checkpoint.pt, with more time on Slurm (runtime x attempt). final.pt is
# protected (read-only): retraining a finished run means deleting it first.


rule pretrain:
    input:
        meta=lambda wc: dataset_meta(pretrain_settings(wc.run)[0]["dataset"]),
    output:
        final=protected("runs/{run}/final.pt"),
        metrics="runs/{run}/metrics.csv",
    log:
        "logs/pretrain/{run}.log",
    benchmark:
        "benchmarks/pretrain/{run}.tsv"
    wildcard_constraints:
        run="|".join(re.escape(run) for run in PRETRAIN_RUNS) or "(?!)",  # (?!) matches nothing
    retries: RETRIES
    conda:
        "../../environment.yml"
    threads: lambda wc: pretrain_settings(wc.run)[1]["threads"]
    resources:
        mem_mb=lambda wc: pretrain_settings(wc.run)[1]["mem_mb"],
        runtime=lambda wc, attempt: pretrain_settings(wc.run)[1]["runtime"] * attempt,
        gpu=lambda wc: pretrain_settings(wc.run)[1]["gpus"],
        slurm_extra=lambda wc: pretrain_settings(wc.run)[1].get("slurm_extra", ""),
    params:
        settings=lambda wc: pretrain_settings(wc.run)[0],
    script:
        "../scripts/pretrain.py"
