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
        "../../environment.yml"
    threads: config["resources"]["table6"]["threads"]
    resources:
        mem_mb=config["resources"]["table6"]["mem_mb"],
        runtime=config["resources"]["table6"]["runtime"],
    params:
        settings=config["table6"],
    script:
        "../scripts/table6.py"
