# Helpers of workflow/rules/sweeps.smk: the sweeps at the configured scale, their cells and
# inputs, and the runs of the loss pool (uses common.smk's pretrain_settings, dataset_unavailable
# and file_and_mtime).
import functools

from lejepa.sweeps import sweep_cells, sweep_names

SWEEPS = [
    name
    for name in sweep_names(config["sweeps"])
    if config["scale"] in config["sweeps"][name]["scales"]
]
# Sweeps with parts (table 1) have their own table rule; the others are lambda x views tables.
ABLATION_SWEEPS = [name for name in SWEEPS if "parts" in config["sweeps"][name]]
GRID_SWEEPS = [name for name in SWEEPS if name not in ABLATION_SWEEPS]
# The sweeps whose runs are the loss pool's inputs (the pool trains them); another sweep's runs
# join the pool when their results are on disk, like any other run.
POOL_SWEEPS = [
    name for name in SWEEPS if config["sweeps"][name].get("pool_inputs", True)
]
POOL_FIGURES = ["fig1", "fig10", "fig11", "fig19", "fig21"]
SWEEP_FIGURES = {"fig8": "table7"}  # figure -> the sweep table it draws


@functools.cache
def sweep_cells_here(sweep):
    """The cells of a sweep at the configured scale (lejepa.sweeps.sweep_cells)."""
    return sweep_cells(
        config["sweeps"][sweep],
        config["scale"],
        unavailable=dataset_unavailable,
        pretrain_dataset=lambda run: pretrain_settings(run)[0]["dataset"],
    )


def sweep_runs_here(sweep):
    return sorted(
        {
            run
            for cell in sweep_cells_here(sweep)
            if cell["status"] == "ok"
            for run in cell["runs"]
        }
    )


def sweep_table_inputs(wildcards):
    cells = [c for c in sweep_cells_here(wildcards.sweep) if c["status"] == "ok"]
    return {
        "results": [path for cell in cells for path in cell["results"]],
        "metrics": [
            f"runs/{run}/metrics.csv" for run in sweep_runs_here(wildcards.sweep)
        ],
    }


@functools.cache
def pool_entries():
    """(entries of the sweeps' runs, entries of other runs with a result on disk) at the
    configured scale; lejepa.sweeps.pool_frame reads them."""
    swept, others = [], []
    for sweep in POOL_SWEEPS:
        at_scale = config["sweeps"][sweep]["scales"][config["scale"]]
        for run in sweep_runs_here(sweep):
            swept.append(
                {
                    "run": run,
                    "sweep": sweep,
                    "settings": result_settings(pretrain_settings(run)[0]),
                    "probe": at_scale["probe"],
                    "probe_dataset": at_scale["dataset"],
                    "result": f"results/{run}/{at_scale['probe']}/{at_scale['dataset']}.json",
                    "metrics": f"runs/{run}/metrics.csv",
                }
            )
    probe = config["sweeps"].get("pool", {}).get("probe", "linear")
    swept_runs = {entry["run"] for entry in swept}
    sweep_of = {
        run: sweep
        for sweep in SWEEPS
        if sweep not in POOL_SWEEPS
        for run in sweep_runs_here(sweep)
    }
    for run in PRETRAIN_RUNS:
        if run in swept_runs:
            continue
        settings = pretrain_settings(run)[0]
        result = f"results/{run}/{probe}/{settings['dataset']}.json"
        metrics = f"runs/{run}/metrics.csv"
        if settings["scale"] == config["scale"] and all(
            os.path.exists(path) for path in (result, metrics)
        ):
            others.append(
                {
                    "run": run,
                    "sweep": sweep_of.get(run, ""),
                    "settings": result_settings(settings),
                    "probe": probe,
                    "probe_dataset": settings["dataset"],
                    "result": result,
                    "metrics": metrics,
                }
            )
    return swept, others


def pool_inputs(wildcards):
    """The loss pool's inputs: the probe results and metrics of the sweeps' runs."""
    swept = pool_entries()[0]
    return {
        "results": [entry["result"] for entry in swept],
        "metrics": [entry["metrics"] for entry in swept],
    }


def pool_other_files():
    """[path, mtime] of the other runs' results and metrics (the loss pool's params)."""
    return [
        file_and_mtime(entry[key])
        for entry in pool_entries()[1]
        for key in ("result", "metrics")
    ]


def ablation_budget(sweep):
    """The training budget of a sweep's default cell (its first run's resolved settings)."""
    cells = [cell for cell in sweep_cells_here(sweep) if cell["reference"]]
    settings = pretrain_settings(cells[0]["runs"][0])[0] if cells else {}
    return {
        key: settings.get(key)
        for key in ("epochs", "max_steps_per_epoch", "warmup_epochs", "batch_size")
    }


def sweep_targets():
    """The tables, figures and CSV of the pool's sweeps (table 7) at the configured scale: the
    loss pool's own sweeps, so that `sweeps` trains no other sweep's runs."""
    figures = [f for f, table in SWEEP_FIGURES.items() if table in POOL_SWEEPS]
    return (
        expand("tables/{sweep}.{ext}", sweep=POOL_SWEEPS, ext=["csv", "md"])
        + ["tables/loss_pool.csv"]
        + expand(
            "figures/{figure}.{ext}",
            figure=figures + POOL_FIGURES,
            ext=["pdf", "png"],
        )
    )
