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
from lejepa.probe_spec import write_few_shot_file


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
    retries: RETRIES
    conda:
        "../envs/train.yaml"
    threads: config["resources"]["probe"]["threads"]
    resources:
        mem_mb=config["resources"]["probe"]["mem_mb"],
        runtime=lambda wc, attempt: config["resources"]["probe"]["runtime"] * attempt,
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
    localrule: True
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
    retries: RETRIES
    conda:
        "../envs/train.yaml"
    threads: config["resources"]["probe"]["threads"]
    resources:
        mem_mb=config["resources"]["probe"]["mem_mb"],
        runtime=lambda wc, attempt: config["resources"]["probe"]["runtime"] * attempt,
        gpu=config["resources"]["probe"].get("gpus", 0),
    params:
        encoder=lambda wc: probe_encoder_spec(wc.run),
        settings=lambda wc: probe_settings(wc.probe, wc.dataset),
        dataset_label=lambda wc: dataset_label(wc.dataset),
    script:
        "../scripts/probe.py"


rule probes:
    """Every result listed in probe.evaluations (config/probe.yaml)."""
    input:
        probe_targets(),
