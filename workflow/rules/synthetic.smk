# Figures 2-7, 15-18 and 20: synthetic experiments, one rule per figure.
# A rule's params hold only its own figure's settings, so editing one block of
# config["synthetic"] reruns only that figure.
for figure in SYNTHETIC_FIGURES:

    rule:
        name:
            f"synthetic_{figure}"
        output:
            pdf=f"figures/{figure}.pdf",
            png=report(
                f"figures/{figure}.png",
                caption=f"../report/{figure}.rst",
                category="Synthetic",
            ),
            csv=f"figures/data/{figure}.csv",
        log:
            f"logs/synthetic/{figure}.log",
        benchmark:
            f"benchmarks/synthetic/{figure}.tsv"
        conda:
            "../envs/synthetic.yaml"
        threads: config["resources"]["synthetic"]["threads"]
        resources:
            mem_mb=config["resources"]["synthetic"]["mem_mb"],
            runtime=config["resources"]["synthetic"]["runtime"],
        params:
            figure=figure,
            settings=config["synthetic"][figure],
        script:
            "../scripts/synthetic_figure.py"
