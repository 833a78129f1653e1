"""One probe of one encoder on one dataset -> the record of results/<run>/<probe>/<dataset>.json.

The probe rule's script unpacks `snakemake` and calls `probe_result`; the recipe bench and
tests call it directly.

<probe> is linear, knn or finetune, optionally _<k>shot (`lejepa.probe.parse_probe_name`).
Frozen probes read the cached feature files; fine-tuning reads the images and the
checkpoint. Every seed (few_shot.seeds for k shots, the method's own seeds otherwise) gives
one accuracy; the result holds their mean and std (ddof=1; 0 for one seed). A frontier
model without weights gives a result with status "weights unreachable: ..." and accuracy
None, never a number.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torchvision.transforms import v2

from lejepa import probe
from lejepa.data import EncodedImages
from lejepa.devices import resolve_device
from lejepa.features import WeightsUnreachable, load_features, probed_backbone
from lejepa.progress import ProgressClock
from lejepa.views import eval_transform

log = logging.getLogger(__name__)


def checkpoint_input(named_input) -> str | None:
    """The checkpoint input of the extract_features and probe rules: runs/<run>/final.pt
    for a pretrained encoder; absent, or an empty list, for the other kinds -> None."""
    if named_input is None or isinstance(named_input, str):
        return named_input
    return named_input[0] if len(named_input) else None


def probe_result(
    probe_name: str,
    *,
    run: str,
    dataset: str,
    dataset_label: str,
    encoder: dict,
    settings: dict,
    feature_files: dict[str, str] | None = None,
    checkpoint: str | None = None,
    few_shot_file: str | None = None,
) -> dict:
    """Run one probe over its seeds.

    Args:
        probe_name: e.g. linear, knn_10shot, finetune_5shot.
        run: the encoder's run name (results/<run>/...).
        dataset: the probed dataset's name; dataset_label: its printed name.
        encoder: the encoder spec of `lejepa.features.probed_backbone` (kind, ...).
        settings: the probe's settings (config/probe.yaml through the rule's probe_settings):
            device (auto | cpu | cuda), seeds (absent for kNN on all samples) and the keyword
            arguments of `lejepa.probe.linear` / `knn`, or for finetune dataset_root, hflip,
            epochs, batch_size, lr, head_lr, weight_decay, workers.
        feature_files: split (train, test, optionally val) -> feature file; frozen probes only.
        checkpoint: runs/<run>/final.pt of a pretrained encoder; fine-tuning only.
        few_shot_file: fewshot/<dataset>/<k>shot.npz; k-shot probes only.

    Returns:
        The result record: what was probed, the encoder's provenance, status ("ok" or why
        there is no number), accuracy (mean over seeds, percent), std, accuracies, per_seed,
        num_train, num_test, device and wall_time_s.
    """
    start = time.perf_counter()
    method, shots = probe.parse_probe_name(probe_name)
    settings = dict(settings)
    seeds = settings.pop("seeds", None)  # kNN on all samples is deterministic: no seeds
    device = resolve_device(settings.pop("device"))
    few_shot_file = few_shot_file if shots else None
    result = {
        "run": run,
        "run_kind": encoder["kind"],
        "probe": probe_name,
        "method": method,
        "dataset": dataset,
        "dataset_label": dataset_label,
        "shots": shots if shots else "all",
        "seeds": seeds,
        "few_shot_indices": few_shot_file,
    }

    def train_indices(seed, num_train):
        """The few-shot subset of this seed, or every training sample."""
        if shots is None:
            return np.arange(num_train)
        return probe.read_few_shot_file(few_shot_file, seed=seed)

    def finished(**fields):
        result.update(fields)
        result["wall_time_s"] = round(time.perf_counter() - start, 3)
        return result

    try:
        if method in ("linear", "knn"):
            per_seed = _frozen_probe(method, feature_files, settings, seeds, train_indices, device, result)
        else:
            per_seed = _fine_tune(encoder, checkpoint, settings, seeds, train_indices, device, result)
    except WeightsUnreachable as error:
        log.info("%s: %s", run, error)
        return finished(status=str(error), accuracy=None, std=None, accuracies=[])

    accuracies = [entry["accuracy"] for entry in per_seed]
    if few_shot_file:
        with np.load(few_shot_file) as subsets:
            counts = np.stack([subsets[f"counts_seed_{seed}"] for seed in seeds])
        # the rule of lejepa.probe.few_shot_indices: a class with fewer than k samples gives all it has
        result["classes_with_fewer_shots"] = {int(c): int(counts[0, c]) for c in np.flatnonzero(counts[0] < shots)}
    return finished(
        status="ok",
        accuracy=float(np.mean(accuracies)),
        std=float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0,
        accuracies=accuracies,
        per_seed=per_seed,
        num_train=per_seed[0]["num_train"],
        num_test=per_seed[0]["num_test"],
        device=device,
    )


def _encoder_fields(info: dict, dataset: str) -> dict:
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


def _frozen_probe(method, feature_files, settings, seeds, train_indices, device, result) -> list[dict]:
    """Linear or kNN on cached features -> one outcome per seed. Feature files that hold no
    features (their encoder's weights were unreachable) raise WeightsUnreachable with their status."""
    splits = {name: load_features(path) for name, path in feature_files.items()}
    statuses = [data["status"] for data in splits.values() if data["status"] != "ok"]
    if statuses:
        raise WeightsUnreachable(statuses[0])
    train, test, val = splits["train"], splits["test"], splits.get("val")
    result.update(_encoder_fields(train["info"], result["dataset"]))
    result["feature_files"] = {name: str(path) for name, path in feature_files.items()}
    train_x, train_y = train["features"], train["labels"]
    per_seed = []
    clock = ProgressClock(len(seeds or [None]))
    for seed in seeds or [None]:
        idx = torch.as_tensor(train_indices(seed, len(train_y)))
        log.info("seed %s: %s probe on %d training samples", seed, method, len(idx))
        if method == "linear":  # L2 on val only when the dataset has one and the probe uses all of train
            outcome = probe.linear_on_splits(
                (train_x, train_y), (test["features"], test["labels"]),
                val=(val["features"], val["labels"]) if val else None,
                train_indices=None if result["shots"] == "all" else idx,
                seed=seed, device=device, **settings,
            )  # fmt: skip
        else:
            outcome = probe.knn(train_x[idx], train_y[idx], test["features"], test["labels"], device=device, **settings)
        log.info("seed %s: %s", seed, outcome)
        per_seed.append({"seed": seed, **outcome})
        log.info("seeds done: %s", clock.done(len(per_seed)))
    return per_seed


def _fine_tune(encoder, checkpoint, settings, seeds, train_indices, device, result) -> list[dict]:
    """Fine-tune backbone + linear head on the images -> one outcome per seed (WeightsUnreachable
    from probed_backbone passes through)."""
    backbone, info = probed_backbone(encoder, checkpoint=checkpoint)
    result.update(_encoder_fields(info, result["dataset"]))
    root = settings["dataset_root"]
    test_transform = eval_transform(info["resolution"])
    train_transform = v2.Compose([v2.RandomHorizontalFlip(), test_transform]) if settings["hflip"] else test_transform
    train_images = EncodedImages(root, "train", transform=train_transform)
    test_images = EncodedImages(root, "test", transform=test_transform)
    per_seed = []
    clock = ProgressClock(len(seeds))
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
        log.info("seeds done: %s", clock.done(len(per_seed)))
    return per_seed
