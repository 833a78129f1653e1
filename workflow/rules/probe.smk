# Evaluation probes (paper section 6): frozen linear, kNN, few-shot and full fine-tuning.
#
#   snakemake --cores all results/cifar10_resnet18/linear/cifar10.json
#   snakemake --cores all probes          # everything listed in probe.evaluations
#
# results/<run>/<probe>/<dataset>.json: accuracy (top-1 %, mean over seeds), std, the
# per-seed numbers, shots, seeds, checkpoint sha256, scale, wall time, the few-shot indices
# file. <run>: a pretrain run, a random-init baseline or a frontier model; <probe>: linear,
# knn or finetune, optionally _<k>shot (config/probe.yaml explains both).
# Intermediate files: features/<run>/<dataset>/<split>.pt (frozen backbone features, once per
# run, dataset and split) and fewshot/<dataset>/<k>shot.npz (the subsets every run shares).
import re

from snakemake.utils import validate

from lejepa.data import DATASETS
from lejepa.probe import write_few_shot_file
from lejepa.train import resolve_run

validate(config["probe"], schema="../schemas/probe.schema.yaml")

PROBE_PATTERN = r"(linear|knn|finetune)(_[1-9][0-9]*shot)?"


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
        run_config, _ = resolve_run(
            config["pretrain"],
            baseline["like"],
            default_scale=config.get("scale", "small"),
        )
        architecture = ("backbone", "projector", "small_stem", "global_size", "scale")
        return {
            "kind": kind,
            "like": baseline["like"],
            "seed": baseline["seed"],
            "run_config": {key: run_config[key] for key in architecture},
        }
    return {"kind": kind}


def probe_checkpoint(run):
    """The checkpoint a run's features need (none for random-init and frontier runs)."""
    return [f"runs/{run}/final.pt"] if probe_run_kind(run) == "pretrained" else []


def probe_data(dataset, split):
    root = f"{config['data']['root']}/{dataset}"
    return {"meta": f"{root}/meta.json", "images": f"{root}/{split}.npz"}


def probe_method_and_shots(probe):
    """'linear_10shot' -> ('linear', 10); 'knn' -> ('knn', None)."""
    method, shots = re.fullmatch(PROBE_PATTERN, probe).groups()
    return method, int(shots[1:-4]) if shots else None


def probe_val_split(dataset):
    """The dataset's official validation split, or None (unknown datasets have none)."""
    spec = DATASETS.get(dataset)
    return spec.val_split if spec else None


def probe_settings(probe, dataset):
    """The rule's params: only this probe's method settings and, for k shots, the seeds."""
    method, shots = probe_method_and_shots(probe)
    settings = dict(config["probe"][method])
    if shots:
        settings["seeds"] = config["probe"]["few_shot"]["seeds"]
    if method == "finetune":
        settings["dataset_root"] = f"{config['data']['root']}/{dataset}"
    return settings


def probe_inputs(wildcards):
    method, shots = probe_method_and_shots(wildcards.probe)
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


rule extract_features:
    input:
        unpack(lambda wc: probe_data(wc.dataset, wc.split)),
        checkpoint=lambda wc: probe_checkpoint(wc.run),
    output:
        "features/{run}/{dataset}/{split}.pt",
    log:
        "logs/probe/features/{run}/{dataset}/{split}.log",
    benchmark:
        "benchmarks/probe/features/{run}/{dataset}/{split}.tsv"
    wildcard_constraints:
        run=r"[^/]+",
        dataset=r"[^/]+",
        split=r"train|val|test",
    conda:
        "../../environment.yml"
    threads: config["resources"]["probe"]["threads"]
    resources:
        mem_mb=config["resources"]["probe"]["mem_mb"],
        runtime=config["resources"]["probe"]["runtime"],
        gpu=config["resources"]["probe"].get("gpus", 0),
    params:
        encoder=lambda wc: probe_encoder_spec(wc.run),
        settings=config["probe"]["features"],
    script:
        "../scripts/extract_features.py"


rule few_shot_indices:
    input:
        meta=lambda wc: probe_data(wc.dataset, "train")["meta"],
        labels=lambda wc: probe_data(wc.dataset, "train")["images"],
    output:
        "fewshot/{dataset}/{shots}shot.npz",
    log:
        "logs/probe/fewshot/{dataset}/{shots}shot.log",
    wildcard_constraints:
        dataset=r"[^/]+",
        shots=r"[1-9][0-9]*",
    params:
        seeds=config["probe"]["few_shot"]["seeds"],
    run:
        write_few_shot_file(
            input.labels,
            output[0],
            shots=int(wildcards.shots),
            seeds=params.seeds,
            log=log[0],
        )


rule probe:
    input:
        unpack(probe_inputs),
    output:
        "results/{run}/{probe}/{dataset}.json",
    log:
        "logs/probe/{run}/{probe}/{dataset}.log",
    benchmark:
        "benchmarks/probe/{run}/{probe}/{dataset}.tsv"
    wildcard_constraints:
        run=r"[^/]+",
        probe=PROBE_PATTERN,
        dataset=r"[^/]+",
    conda:
        "../../environment.yml"
    threads: config["resources"]["probe"]["threads"]
    resources:
        mem_mb=config["resources"]["probe"]["mem_mb"],
        runtime=config["resources"]["probe"]["runtime"],
        gpu=config["resources"]["probe"].get("gpus", 0),
    params:
        encoder=lambda wc: probe_encoder_spec(wc.run),
        settings=lambda wc: probe_settings(wc.probe, wc.dataset),
        dataset_label=lambda wc: (
            DATASETS[wc.dataset].label if wc.dataset in DATASETS else wc.dataset
        ),
    script:
        "../scripts/probe.py"


rule probes:
    """Every result listed in probe.evaluations (config/probe.yaml)."""
    input:
        probe_targets(),
