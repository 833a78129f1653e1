# The paper's real-data tables (config/tables.yaml) and figure 12, at the configured scale.
#
#   snakemake --cores all tables/table2.csv                       # scale from config/config.yaml
#   snakemake --cores all tables/table3.md --config scale=tiny
#   snakemake --profile slurm tables/table2.csv --config scale=paper
#
# tables/<table>.csv holds one line per cell (ours, the paper's number, the gap, the run and
# its provenance); tables/<table>.md renders it with the paper's claim, the checks of its
# orderings, the runs and the notes of the cells that cannot be computed here. A cell whose
# dataset cannot be had is never planned: the table says why, and the DAG still finishes.


include: "backbones_common.smk"


rule real_table:
    input:
        unpack(table_inputs),
    output:
        csv=report(
            "tables/{table}.csv",
            caption="../report/real_table.rst",
            category="Real-data tables",
        ),
        md=report(
            "tables/{table}.md",
            caption="../report/real_table.rst",
            category="Real-data tables",
        ),
    log:
        "logs/tables/{table}.log",
    wildcard_constraints:
        table="|".join(REAL_TABLES) or "(?!)",
    localrule: True  # assembles results/ into a table: seconds
    conda:
        "../envs/tables.yaml"
    params:
        table=lambda wc: config["tables"][wc.table],
        cells=lambda wc: table_cells_here(wc.table),
        encoders=lambda wc: table_encoders(wc.table),
        scale=config["scale"],
    script:
        "../scripts/real_table.py"


rule fig12:
    input:
        "tables/table3.csv",
    output:
        pdf=report(
            "figures/fig12.pdf",
            caption="../report/fig12.rst",
            category="Real-data tables",
        ),
        png="figures/fig12.png",
    log:
        "logs/figures/fig12.log",
    localrule: True  # assembles results/ into a table: seconds
    conda:
        "../envs/tables.yaml"
    script:
        "../scripts/fig12.py"


rule real_tables:
    """Tables 2, 3 and 5 and figure 12 at the configured scale."""
    input:
        real_table_targets(),


# Any other tables/ or figures/ target: one line, "not a target; nearest: ..." (never a
# MissingRuleException).
rule no_such_table:
    input:
        lambda wc: no_such_target(f"tables/{wc.name}.{wc.ext}", wc.name),
    output:
        "tables/{name}.{ext}",
    log:
        "logs/no_such_target/tables/{name}.{ext}.log",
    wildcard_constraints:
        name=any_name_but(REAL_TABLES + ["table6"] + SWEEP_OUTPUT_NAMES),
        ext=r"csv|md",
    conda:
        "../envs/tables.yaml"
    shell:
        "false"


rule no_such_figure:
    input:
        lambda wc: no_such_target(f"figures/{wc.name}.{wc.ext}", wc.name),
    output:
        "figures/{name}.{ext}",
    log:
        "logs/no_such_target/figures/{name}.{ext}.log",
    wildcard_constraints:
        name=any_name_but(
            SYNTHETIC_FIGURES + ["fig12"] + SWEEP_OUTPUT_NAMES + BACKBONE_FIGURES
        ),
        ext=r"pdf|png",
    conda:
        "../envs/tables.yaml"
    shell:
        "false"
