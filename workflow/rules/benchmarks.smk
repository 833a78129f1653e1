# Table 6: time of one SIGReg forward + backward pass over the paper's (N, M, knots) grid.


rule table6:
    output:
        csv=report(
            "tables/table6.csv",
            caption="../report/table6.rst",
            category="Benchmarks",
        ),
        md="tables/table6.md",
    log:
        "logs/table6.log",
    benchmark:
        "benchmarks/table6.tsv"
    conda:
        "../envs/synthetic.yaml"
    threads: config["resources"]["table6"]["threads"]
    resources:
        mem_mb=config["resources"]["table6"]["mem_mb"],
        runtime=config["resources"]["table6"]["runtime"],
    params:
        settings=config["table6"],
    script:
        "../scripts/table6.py"


# The same table timed on a GPU (the machine must have one: device is forced to cuda).
# tables/table6-cuda.* is what this rule writes (a "-": tables.smk's catch-all for
# unknown tables takes any tables/<word>.csv); run it on a GPU node, e.g.
#   snakemake --cores 2 tables/table6-cuda.csv                  (a local GPU)
#   snakemake --profile slurm tables/table6-cuda.csv            (a Slurm GPU job)
rule table6_cuda:
    output:
        csv=report(
            "tables/table6-cuda.csv",
            caption="../report/table6.rst",
            category="Benchmarks",
        ),
        md="tables/table6-cuda.md",
    log:
        "logs/table6-cuda.log",
    benchmark:
        "benchmarks/table6-cuda.tsv"
    conda:
        "../envs/synthetic.yaml"
    threads: config["resources"]["table6"]["threads"]
    resources:
        mem_mb=config["resources"]["table6"]["mem_mb"],
        runtime=config["resources"]["table6"]["runtime"],
        gpus=1,
    params:
        settings={**config["table6"], "device": "cuda"},
    script:
        "../scripts/table6.py"
