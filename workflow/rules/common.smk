# Helpers shared by all rules: the lists of targets and each stage's settings.
# (The Snakefile validates the config before this file is included.)
import difflib
import functools
import os
import re
import sys

from lejepa.data import (
    DATASETS,
    dataset_label,
    host_unreachable,
    prepare_settings,
    unavailable_reason,
)
from lejepa.probe_spec import PROBE_PATTERN, parse_probe_name
from lejepa.tables import table_cells
from lejepa.train_config import resolve_workflow_run, result_settings

# Figures of the paper built from synthetic data, in the paper's order.
# Each has compute_figN/draw_figN in src/lejepa/synthetic/ (lejepa.synthetic.experiment).
SYNTHETIC_FIGURES = [
    "fig2",
    "fig3",
    "fig4",
    "fig5",
    "fig6",
    "fig7",
    "fig15",
    "fig16",
    "fig17",
    "fig18",
    "fig20",
]


def synthetic_figure_targets():
    """figures/figN.pdf, figures/figN.png and figures/data/figN.csv of every synthetic figure."""
    return expand(
        ["figures/{figure}.pdf", "figures/{figure}.png", "figures/data/{figure}.csv"],
        figure=SYNTHETIC_FIGURES,
    )


def table6_targets():
    return ["tables/table6.csv", "tables/table6.md"]


def synthetic_targets():
    """Everything that needs neither data nor a GPU: the synthetic figures and table 6."""
    return synthetic_figure_targets() + table6_targets()


# Data (workflow/rules/data.smk)


def dataset_dir(name):
    return f"{config['data'].get('root', 'data')}/{name}"


def dataset_meta(name):
    """<data.root>/<name>/meta.json: the file that marks a prepared dataset as ready."""
    return f"{dataset_dir(name)}/meta.json"


# Pretraining (workflow/rules/pretrain.smk)


PRETRAIN_RUNS = sorted(config["pretrain"]["runs"])
# How often a failed pretrain, extract_features or probe job starts again (config/config.yaml).
RETRIES = config.get("retries", 2)


def pretrain_settings(run):
    """(flat training config, resources) of one run: its scale's settings + its own keys."""
    return resolve_workflow_run(config, run)


def pretrain_targets(runs=PRETRAIN_RUNS):
    return expand("runs/{run}/final.pt", run=runs)


# Probes (workflow/rules/probe.smk)


def probe_run_kind(run):
    """pretrained, random_init or frontier; an unknown run is an error naming the config keys."""
    if run in config["probe"]["frontier"]:
        return "frontier"
    if run in config["probe"]["random_init"]:
        return "random_init"
    if run in config.get("pretrain", {}).get("runs", {}):
        return "pretrained"
    raise ValueError(
        f"unknown run {run!r}: define it in pretrain.runs, probe.random_init or probe.frontier"
    )


def probe_encoder_spec(run):
    """What lejepa.features.probed_backbone builds for a run (also the rules' params, so
    editing a random-init baseline or the frontier resolution reruns its features)."""
    kind = probe_run_kind(run)
    if kind == "frontier":
        return {
            "kind": kind,
            "name": run,
            "resolution": config["probe"]["frontier_resolution"],
        }
    if kind == "random_init":
        baseline = config["probe"]["random_init"][run]
        run_config, _ = resolve_workflow_run(config, baseline["like"])
        # patch_size and num_registers (ViTs) only where a run sets them: the params of the
        # baselines of other runs stay as they were
        architecture = (
            "backbone",
            "projector",
            "small_stem",
            "global_size",
            "scale",
            "patch_size",
            "num_registers",
        )
        return {
            "kind": kind,
            "like": baseline["like"],
            "seed": baseline["seed"],
            "run_config": {
                key: run_config[key] for key in architecture if key in run_config
            },
        }
    return {"kind": kind}


def probe_checkpoint(run):
    """The checkpoint a run's features need (none for random-init and frontier runs)."""
    return [f"runs/{run}/final.pt"] if probe_run_kind(run) == "pretrained" else []


def probe_data(dataset, role):
    """meta.json and the split file that plays ``role`` (train, val or test) for a probe:
    ImageNet's test role is its val split (lejepa.data.DATASETS)."""
    root = f"{config['data']['root']}/{dataset}"
    split = role
    if dataset in DATASETS:
        spec = DATASETS[dataset]
        split = {
            "train": spec.train_split,
            "val": spec.val_split,
            "test": spec.test_split,
        }[role]
    return {"meta": f"{root}/meta.json", "images": f"{root}/{split}.npz"}


def probe_val_split(dataset):
    """The dataset's official validation split, or None (unknown datasets have none)."""
    spec = DATASETS.get(dataset)
    return spec.val_split if spec else None


def probe_settings(probe, dataset):
    """The rule's params: only this probe's method settings (with the scale's overrides of
    probe.scales) and, for k shots, the seeds."""
    method, shots = parse_probe_name(probe)
    scale = config.get("scale", "small")
    at_scale = config["probe"].get("scales", {}).get(scale, {}).get(method, {})
    unknown = set(at_scale) - set(config["probe"][method])
    if unknown:
        raise ValueError(
            f"probe.scales.{scale}.{method}: unknown key(s) {sorted(unknown)}; "
            f"known: {sorted(config['probe'][method])}"
        )
    settings = {**config["probe"][method], **at_scale}
    if shots:
        settings["seeds"] = config["probe"]["few_shot"]["seeds"]
    if method == "finetune":
        settings["dataset_root"] = f"{config['data']['root']}/{dataset}"
    return settings


def probe_inputs(wildcards):
    method, shots = parse_probe_name(wildcards.probe)
    features = lambda split: f"features/{wildcards.run}/{wildcards.dataset}/{split}.pt"
    inputs = {}
    if method == "finetune":
        inputs["checkpoint"] = probe_checkpoint(wildcards.run)
        inputs["meta"] = probe_data(wildcards.dataset, "train")["meta"]
        inputs["train_images"] = probe_data(wildcards.dataset, "train")["images"]
        inputs["test_images"] = probe_data(wildcards.dataset, "test")["images"]
    else:
        inputs["train"] = features("train")
        inputs["test"] = features("test")
        if method == "linear" and shots is None and probe_val_split(wildcards.dataset):
            inputs["val"] = features(probe_val_split(wildcards.dataset))
    if shots:
        inputs["few_shot"] = f"fewshot/{wildcards.dataset}/{shots}shot.npz"
    return inputs


def probe_targets():
    """Every result listed in probe.evaluations."""
    return [
        f"results/{run}/{probe}/{dataset}.json"
        for entry in config["probe"]["evaluations"]
        for run in entry["runs"]
        for probe in entry["probes"]
        for dataset in entry["datasets"]
    ]


# Real-data tables (workflow/rules/tables.smk)


REAL_TABLES = sorted(config.get("tables", {}))


@functools.cache
def dataset_unavailable(name):
    """None when the configured source can serve the dataset, else why not (one line)."""
    return unavailable_reason(
        name,
        root=config["data"]["root"],
        **prepare_settings(name, config["data"]),
        check_host=host_unreachable,
    )


@functools.cache
def table_cells_here(table):
    """The cells of config/tables.yaml's `table` at the configured scale (lejepa.tables.table_cells)."""
    return table_cells(
        config["tables"][table],
        scale=config["scale"],
        run_kind=probe_run_kind,
        pretrain_dataset=lambda run: pretrain_settings(run)[0]["dataset"],
        unavailable=dataset_unavailable,
    )


def table_inputs(wildcards):
    """The probe results of a table's planned cells and the metrics of the runs behind them."""
    cells = [cell for cell in table_cells_here(wildcards.table) if cell["result"]]
    pretrained = {cell["run"] for cell in cells if cell["run_kind"] == "pretrained"}
    return {
        "results": sorted({cell["result"] for cell in cells}),
        "metrics": [f"runs/{run}/metrics.csv" for run in sorted(pretrained)],
    }


def table_encoders(table):
    """run -> its encoder spec (what read_run_info needs), for every run of the table."""
    runs = {cell["run"] for cell in table_cells_here(table) if cell["run"]}
    return {run: probe_encoder_spec(run) for run in sorted(runs)}


def real_table_targets():
    return expand("tables/{table}.{ext}", table=REAL_TABLES, ext=["csv", "md"]) + [
        "figures/fig12.pdf",
        "figures/fig12.png",
    ]


# tables/ and figures/ names built by workflow/rules/sweeps.smk (the catch-all rules leave them be).
SWEEP_OUTPUT_NAMES = [
    "table1",
    "table7",
    "loss_pool",
    "fig1",
    "fig8",
    "fig10",
    "fig11",
    "fig19",
    "fig21",
]


def any_name_but(names):
    """A wildcard pattern for a file name that is none of `names` (so rules never overlap)."""
    return r"(?!(?:" + "|".join(map(re.escape, names)) + r")\b)[^/.]+"


def no_such_target(path, name):
    """Stop with one line: a misspelt target, with the nearest real ones."""
    known = [
        str(target)
        for target in synthetic_targets() + real_table_targets()
        if str(target).startswith(path.split("/")[0])
    ]
    nearest = difflib.get_close_matches(path, known, n=3, cutoff=0.5)
    sys.exit(
        f"{path} is not a target of this workflow"
        + (f"; nearest: {', '.join(nearest)}" if nearest else "")
    )


# Monitoring (workflow/rules/monitor.smk)


def runs_with_metrics():
    """The runs of config/pretrain.yaml that have a runs/<run>/metrics.csv on disk now."""
    return [run for run in PRETRAIN_RUNS if os.path.exists(f"runs/{run}/metrics.csv")]


def file_and_mtime(path):
    """[path, modification time]: a params value that changes whenever the file does."""
    return [path, os.path.getmtime(path) if os.path.exists(path) else None]


def existing_results():
    """Every results/<run>/<probe>/<dataset>.json on disk now."""
    found = glob_wildcards("results/{run}/{probe}/{dataset}.json")
    return sorted(
        f"results/{run}/{probe}/{dataset}.json"
        for run, probe, dataset in zip(found.run, found.probe, found.dataset)
        if "/" not in run + probe + dataset
    )
