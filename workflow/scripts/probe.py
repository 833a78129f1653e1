"""Rule probe: one probe of one encoder on one dataset -> results/<run>/<probe>/<dataset>.json.

<probe> is linear, knn or finetune, optionally _<k>shot. Frozen probes read the cached
features; fine-tuning reads the images and the checkpoint. Every seed (few_shot.seeds for
k shots, the method's own seeds otherwise) gives one accuracy; the result holds their mean
and std (ddof=1; 0 for one seed). A frontier model without weights gives a result with
status "weights unreachable: ..." and accuracy null, never a number.
"""

import json
import logging
import sys
import time

import numpy as np
import torch
from torchvision.transforms import v2

from lejepa import probe
from lejepa.data import EncodedImages
from lejepa.features import WeightsUnreachable, load_features, probed_backbone
from lejepa.io import send_output_to_log, write_text
from lejepa.views import eval_transform

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
log = logging.getLogger("lejepa.workflow.probe")

start = time.perf_counter()
torch.set_num_threads(snakemake.threads)
run, probe_name, dataset = snakemake.wildcards.run, snakemake.wildcards.probe, snakemake.wildcards.dataset
method, shots = probe.parse_probe_name(probe_name)
settings = dict(snakemake.params.settings)
seeds = settings.pop("seeds", None)  # kNN on all samples is deterministic: no seeds
device = settings.pop("device")
device = None if device == "auto" else device
spec = snakemake.params.encoder
few_shot_file = snakemake.input.get("few_shot") if shots else None

result = {
    "run": run,
    "run_kind": spec["kind"],
    "probe": probe_name,
    "method": method,
    "dataset": dataset,
    "dataset_label": snakemake.params.dataset_label,
    "shots": shots if shots else "all",
    "seeds": seeds,
    "few_shot_indices": few_shot_file,
}


def finish(**fields):
    result.update(fields)
    result["wall_time_s"] = round(time.perf_counter() - start, 3)
    write_text(json.dumps(result, indent=1) + "\n", snakemake.output[0])
    log.info("wrote %s: %s", snakemake.output[0], {k: result.get(k) for k in ("status", "accuracy", "std")})


def unreachable(status):
    log.info("%s: %s", run, status)
    finish(status=status, accuracy=None, std=None, accuracies=[])


def train_indices(seed, num_train):
    """The few-shot subset of this seed, or every training sample."""
    if shots is None:
        return np.arange(num_train)
    return probe.read_few_shot_file(few_shot_file, seed=seed)


def encoder_fields(info):
    pretrain_dataset = info.get("pretrain_dataset")
    return {
        "checkpoint": info.get("checkpoint"),
        "checkpoint_sha256": info.get("checkpoint_sha256"),
        "scale": info.get("scale"),
        "pretrain_dataset": pretrain_dataset,
        # evaluated on another dataset than it was pretrained on (at small scale, our
        # tinyimagenet100 encoder stands in for the paper's transfer models)
        "transfer": pretrain_dataset not in (None, dataset),
        "resolution": info.get("resolution"),
    }


per_seed = []
if method in ("linear", "knn"):
    splits = {name: load_features(snakemake.input[name]) for name in ("train", "val", "test") if name in snakemake.input.keys()}
    statuses = [data["status"] for data in splits.values() if data["status"] != "ok"]
    if statuses:
        unreachable(statuses[0])
        sys.exit(0)
    train, test, val = splits["train"], splits["test"], splits.get("val")
    result.update(encoder_fields(train["info"]))
    result["feature_files"] = {name: str(snakemake.input[name]) for name in splits}
    train_x, train_y = train["features"], train["labels"]
    for seed in seeds or [None]:
        idx = torch.as_tensor(train_indices(seed, len(train_y)))
        if method == "linear":
            outcome = probe.linear(
                train_x[idx], train_y[idx], test["features"], test["labels"],
                val_x=val["features"] if val else None, val_y=val["labels"] if val else None,
                seed=seed, device=device, **settings,
            )
        else:
            outcome = probe.knn(train_x[idx], train_y[idx], test["features"], test["labels"], device=device, **settings)
        log.info("seed %s: %s", seed, outcome)
        per_seed.append({"seed": seed, **outcome})
else:  # finetune
    checkpoint = snakemake.input.get("checkpoint")
    if checkpoint is not None and not isinstance(checkpoint, str):
        checkpoint = checkpoint[0] if len(checkpoint) else None
    try:
        backbone, info = probed_backbone(spec, checkpoint=checkpoint)
    except WeightsUnreachable as error:
        unreachable(str(error))
        sys.exit(0)
    result.update(encoder_fields(info))
    root = settings.pop("dataset_root")
    test_transform = eval_transform(info["resolution"])
    train_transform = v2.Compose([v2.RandomHorizontalFlip(), test_transform]) if settings.pop("hflip") else test_transform
    train_images = EncodedImages(root, "train", transform=train_transform)
    test_images = EncodedImages(root, "test", transform=test_transform)
    for seed in seeds:
        idx = train_indices(seed, len(train_images))
        log.info("seed %d: fine-tuning on %d images, testing on %d", seed, len(idx), len(test_images))
        outcome = probe.fine_tune(
            backbone,
            torch.utils.data.Subset(train_images, idx.tolist()),
            test_images,
            num_classes=len(train_images.classes),
            epochs=settings["epochs"],
            batch_size=settings["batch_size"],
            lr=settings["lr"],
            head_lr=settings["head_lr"],
            weight_decay=settings["weight_decay"],
            num_workers=settings["workers"],
            seed=seed,
            device=device,
        )
        log.info("seed %d: %s", seed, outcome)
        per_seed.append({"seed": seed, **outcome})

accuracies = [entry["accuracy"] for entry in per_seed]
if few_shot_file:
    with np.load(few_shot_file) as subsets:
        counts = np.stack([subsets[f"counts_seed_{seed}"] for seed in seeds])
    # the rule of lejepa.probe.few_shot_indices: a class with fewer than k samples gives all it has
    result["classes_with_fewer_shots"] = {int(c): int(counts[0, c]) for c in np.flatnonzero(counts[0] < shots)}
finish(
    status="ok",
    accuracy=float(np.mean(accuracies)),
    std=float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0,
    accuracies=accuracies,
    per_seed=per_seed,
    num_train=per_seed[0]["num_train"],
    num_test=per_seed[0]["num_test"],
    device=str(device or ("cuda" if torch.cuda.is_available() else "cpu")),
)
