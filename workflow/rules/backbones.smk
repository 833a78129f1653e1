# Figure 9: one timm model under 20M parameters per family, in-domain on ImageNet-10 (its
# stand-in tinyimagenet10 at the small scale), drawn from tables/fig9.csv (config/tables.yaml,
# table fig9; rule real_table) as a bar chart with each backbone's parameter count.
#
#   snakemake --cores all figures/fig9.pdf                  # scale of config/config.yaml
#   snakemake --cores all figures/fig9.pdf --config scale=tiny


rule fig9:
    input:
        "tables/fig9.csv",
    output:
        pdf=report(
            "figures/fig9.pdf",
            caption="../report/fig9.rst",
            category="Real-data tables",
        ),
        png="figures/fig9.png",
    log:
        "logs/figures/fig9.log",
    localrule: True  # a bar chart of a table: seconds
    conda:
        "../envs/tables.yaml"
    params:
        runs=lambda wc: fig9_run_settings(),
    script:
        "../scripts/fig9.py"
