# Sweeps (config/sweeps.yaml; src/lejepa/sweeps.py): table 7 and figure 8 (lambda x views), and
# the loss pool behind figures 1 (top), 10, 11, 19 and 21, at the configured scale.
#
#   snakemake --cores all tables/table7.csv --config scale=tiny    # 4 runs of a few steps (CI)
#   snakemake --cores all sweeps                                   # table 7, figure 8, the pool, its figures
#   snakemake -n --profile slurm tables/table7.csv --config scale=paper   # the paper's 36 runs
#
# Each sweep's runs (<base>__lam<lambda>__v<views>) are pretrain runs (the Snakefile adds them to
# pretrain.runs) and are probed by the probe rule. tables/loss_pool.csv gathers every run of the
# configured scale that has a probe result: the sweeps' runs are its inputs, any other run enters
# when its result is on disk (a param: path and modification time), so the pool never trains.
include: "sweeps_common.smk"


rule sweep_table:
    input:
        unpack(sweep_table_inputs),
    output:
        csv=report(
            "tables/{sweep}.csv",
            caption="../report/sweep_table.rst",
            category="Sweeps",
        ),
        md=report(
            "tables/{sweep}.md",
            caption="../report/sweep_table.rst",
            category="Sweeps",
        ),
    log:
        "logs/sweeps/{sweep}.log",
    wildcard_constraints:
        sweep="|".join(GRID_SWEEPS) or "(?!)",
    localrule: True  # assembles results/ into a table: seconds
    conda:
        "../envs/tables.yaml"
    params:
        sweep=lambda wc: config["sweeps"][wc.sweep],
        cells=lambda wc: sweep_cells_here(wc.sweep),
        scale=config["scale"],
    script:
        "../scripts/sweep_table.py"


rule ablation_table:
    input:
        unpack(sweep_table_inputs),
    output:
        csv=report(
            "tables/{sweep}.csv",
            caption="../report/ablation_table.rst",
            category="Sweeps",
        ),
        md=report(
            "tables/{sweep}.md",
            caption="../report/ablation_table.rst",
            category="Sweeps",
        ),
    log:
        "logs/sweeps/{sweep}.log",
    wildcard_constraints:
        sweep="|".join(ABLATION_SWEEPS) or "(?!)",
    localrule: True  # assembles results/ into a table: seconds
    conda:
        "../envs/tables.yaml"
    params:
        sweep=lambda wc: config["sweeps"][wc.sweep],
        cells=lambda wc: sweep_cells_here(wc.sweep),
        budget=lambda wc: ablation_budget(wc.sweep),
        scale=config["scale"],
    script:
        "../scripts/sweep_ablation_table.py"


rule sweep_figure:
    input:
        lambda wc: f"tables/{SWEEP_FIGURES[wc.figure]}.csv",
    output:
        pdf="figures/{figure}.pdf",
        png=report(
            "figures/{figure}.png",
            caption="../report/fig8.rst",
            category="Sweeps",
        ),
    log:
        "logs/figures/{figure}.log",
    wildcard_constraints:
        figure="|".join(f for f, t in SWEEP_FIGURES.items() if t in SWEEPS) or "(?!)",
    localrule: True  # draws a table: seconds
    conda:
        "../envs/tables.yaml"
    params:
        scale=config["scale"],
    script:
        "../scripts/sweep_figure.py"


rule loss_pool:
    input:
        unpack(pool_inputs),
    output:
        csv=report(
            "tables/loss_pool.csv",
            caption="../report/loss_pool.rst",
            category="Sweeps",
        ),
    log:
        "logs/sweeps/loss_pool.log",
    localrule: True  # reads results and metrics: seconds
    conda:
        "../envs/tables.yaml"
    params:
        swept=lambda wc: pool_entries()[0],
        others=lambda wc: pool_entries()[1],
        # the other runs' files as (path, mtime): a new or updated result reruns the pool
        files=lambda wc: pool_other_files(),
        scale=config["scale"],
    script:
        "../scripts/loss_pool.py"


rule pool_figure:
    input:
        "tables/loss_pool.csv",
    output:
        pdf="figures/{figure}.pdf",
        png=report(
            "figures/{figure}.png",
            caption="../report/pool_figure.rst",
            category="Sweeps",
        ),
        data="figures/data/{figure}.csv",
    log:
        "logs/figures/{figure}.log",
    wildcard_constraints:
        figure="|".join(POOL_FIGURES),
    localrule: True  # draws the pool: seconds
    conda:
        "../envs/tables.yaml"
    params:
        alphas=config["sweeps"].get("pool", {}).get("alphas"),
        scale=config["scale"],
    script:
        "../scripts/pool_figure.py"


rule sweeps:
    """Table 7, figure 8, the loss pool and figures 1, 10, 11, 19 and 21 at the configured scale."""
    input:
        sweep_targets(),
    localrule: True
