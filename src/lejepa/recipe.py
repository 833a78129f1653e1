"""The small-scale recipe: pretrain for a fixed wall-clock budget, then a frozen linear probe.

`bench/recipe.py` is its command line (the module docstring there says how the budget is
fitted and what was measured); this module holds the steps:

    timing = calibrate(config, scratch, steps=8)                 # 2 short epochs of the real config
    schedule = fit_schedule(budget_s=600, step_s=timing["step_s"], ...)
    encoder, history = train_on_schedule(config, schedule, run_dir)
    linear_probe(encoder, root, name="cifar10", size=32, config=config)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import torch

from lejepa import probe, train, train_config
from lejepa.data import DATASETS, EncodedImages
from lejepa.devices import resolve_device, resolve_workers
from lejepa.features import extract
from lejepa.models import load_encoder
from lejepa.tables import GENERATED_FOLDERS
from lejepa.views import eval_transform

# Keys fitted to the budget: a --set of them is refused.
FITTED_KEYS = ("epochs", "max_steps_per_epoch", "warmup_epochs")
OWN_KEYS = ("run", "scale", "dataset", "seed", "out_dir", "threads")  # set by the bench's own options


# ---------------------------------------------------------------- the schedule


def fit_schedule(
    *,
    budget_s: float,
    step_s: float,
    full_epoch_steps: int,
    warmup_fraction: float,
    epoch_overhead_s: float = 0.0,
    startup_s: float = 0.0,
) -> dict:
    """Epochs E and steps per epoch S whose training c + E (S s + o) fits the budget B.

    E is the smallest count for which S = floor((B - c - E o) / (E s)) <= full_epoch_steps
    (bench/recipe.py's docstring). Returns epochs, steps_per_epoch, total_steps, warmup_epochs
    (= warmup_fraction * E, so warm-up + cosine end with the last step) and predicted_s.
    """
    if step_s <= 0 or full_epoch_steps < 1:
        raise ValueError(f"need step_s > 0 and full_epoch_steps >= 1, got {step_s}, {full_epoch_steps}")
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    epochs = 1
    while True:
        steps = math.floor((budget_s - startup_s - epochs * epoch_overhead_s) / (epochs * step_s))
        if steps < 1:
            raise ValueError(
                f"a budget of {budget_s:.1f} s holds no training step at {step_s:.3f} s/step "
                f"(+ {epoch_overhead_s:.1f} s per epoch, {startup_s:.1f} s start-up): raise --minutes"
            )
        if steps <= full_epoch_steps:
            break
        epochs += 1
    return {
        "epochs": epochs,
        "steps_per_epoch": steps,
        "total_steps": epochs * steps,
        "warmup_epochs": warmup_fraction * epochs,
        "predicted_s": startup_s + epochs * (steps * step_s + epoch_overhead_s),
    }


def calibrate(config: dict, scratch: Path, *, steps: int) -> dict:
    """Time 2 epochs of `steps` steps of the real config -> step_s, epoch_overhead_s, startup_s, img_per_s."""
    calibration = {
        **config,
        "run": f"{config['run']}-calibration",
        "out_dir": str(scratch),
        "epochs": 2,
        "max_steps_per_epoch": steps,
        "warmup_epochs": 1,
        "checkpoint_minutes": 1e9,
        "progress": False,
    }
    start = time.monotonic()
    train.main(calibration)
    history = pd.read_csv(scratch / "metrics.csv")
    shutil.rmtree(scratch)
    first, second = history.iloc[0], history.iloc[1]
    steps = int(second["step"] - first["step"])  # a dataset smaller than `steps` batches cuts it
    step_s = config["batch_size"] / second["img_per_s"]
    epoch_overhead_s = max(0.0, second["wall_s"] - first["wall_s"] - steps * step_s)
    startup_s = max(0.0, first["wall_s"] - steps * step_s - epoch_overhead_s)
    return {
        "step_s": float(step_s),
        "epoch_overhead_s": float(epoch_overhead_s),
        "startup_s": float(startup_s),
        "img_per_s": float(second["img_per_s"]),
        "steps": 2 * steps,
        "seconds": time.monotonic() - start,
    }


def train_on_schedule(config: dict, schedule: dict, run_dir: Path) -> tuple[torch.nn.Module, pd.DataFrame, dict]:
    """lejepa.train.main on ``config`` with the fitted epochs, steps per epoch and warm-up, in
    ``run_dir`` -> (the trained encoder, its metrics.csv, the config it ran)."""
    config = {
        **config,
        "out_dir": str(run_dir),
        "epochs": schedule["epochs"],
        "max_steps_per_epoch": schedule["steps_per_epoch"],
        "warmup_epochs": schedule["warmup_epochs"],
    }
    train.main(config)
    encoder, _ = load_encoder(Path(run_dir) / "final.pt")
    return encoder, pd.read_csv(Path(run_dir) / "metrics.csv"), config


# ---------------------------------------------------------------- config and data


def code_commit(repo: Path) -> str:
    """The commit a result row was made with: HEAD's short hash, ``-dirty`` when tracked files
    other than outputs (GENERATED_FOLDERS and bench/results, where rows accumulate) differ from
    it, ``unknown`` outside git. ``LEJEPA_COMMIT`` in the environment takes precedence (a copy
    of the tree without .git), as in lejepa.tables.git_commit."""
    if os.environ.get("LEJEPA_COMMIT"):
        return os.environ["LEJEPA_COMMIT"]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        outputs = [f":(exclude){folder}" for folder in (*GENERATED_FOLDERS, "bench/results")]
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", *outputs)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def parse_overrides(pairs: list[str]) -> dict:
    """['lr=4e-3', 'global_scale=[0.2, 1.0]'] -> {'lr': 0.004, 'global_scale': [0.2, 1.0]}: the
    training CLI's --set (lejepa.train_config.parse_overrides), less the keys this script sets."""
    for pair in pairs:
        key = pair.partition("=")[0].strip()
        if key in FITTED_KEYS:
            raise ValueError(f"--set {key}: fitted to the budget by the script (use --minutes / --warmup-fraction)")
        if key in OWN_KEYS:
            raise ValueError(f"--set {key}: use the script's own option (--dataset, --seed, --threads, --scale)")
    return train_config.parse_overrides(pairs)


def probe_splits(name: str, root: Path) -> tuple[list[str], str]:
    """([train split, val split when the dataset has one], test split): the registry's roles."""
    if name in DATASETS:
        spec = DATASETS[name]
        return [spec.train_split] + ([spec.val_split] if spec.val_split else []), spec.test_split
    splits = json.loads((root / "meta.json").read_text())["splits"]
    return ["train"] + (["val"] if "val" in splits else []), "test"


def view_sizes(name: str, root: Path) -> tuple[int, int]:
    """global = the registry's training resolution, capped at the stored image side; local = half."""
    image, _ = EncodedImages(root, "train")[0]
    stored = min(image.shape[-2:])
    size = min(DATASETS[name].image_size, stored) if name in DATASETS else stored
    return size, max(1, size // 2)


# ---------------------------------------------------------------- features and probe


def linear_probe(encoder: torch.nn.Module, root: Path, *, name: str, size: int, config: dict) -> dict:
    """Frozen backbone features (eval transform at the global view size) -> the workflow's linear
    probe, lejepa.probe.linear_on_splits: fit on train, L2 chosen on val when the dataset has
    one, else on a held-out part of train (the path of the probe rule's results)."""
    device = torch.device(resolve_device(config["device"]))
    train_splits, test_split = probe_splits(name, root)
    train_split, val_split = train_splits[0], (train_splits[1] if len(train_splits) > 1 else None)
    workers = resolve_workers(config["workers"], device=device.type, threads=config["threads"])
    start = time.monotonic()
    features = {}
    for split in [*train_splits, test_split]:
        images = EncodedImages(root, split, transform=eval_transform(size))
        features[split] = extract(
            encoder.backbone, images, batch_size=256, num_workers=workers, device=device, progress=False
        )
    extract_s = time.monotonic() - start
    shapes = ", ".join(f"{split} {tuple(features[split][0].shape)}" for split in features)
    print(f"features: {shapes} in {extract_s:.0f} s; fitting the linear probe ...", flush=True)
    start = time.monotonic()
    result = probe.linear_on_splits(
        features[train_split], features[test_split], val=features[val_split] if val_split else None,
        seed=config["seed"], device=device,
    )  # fmt: skip
    return {
        "probe_top1": result["accuracy"],
        "probe_train_top1": result["train_accuracy"],
        "probe_l2": result["l2"],
        "probe_l2_selection": result["l2_selection"],
        "probe_train_splits": train_split,
        "probe_val_split": val_split,
        "probe_test_split": test_split,
        "num_probe_train": result["num_train"],
        "num_probe_test": result["num_test"],
        "feature_dim": int(features[train_split][0].shape[1]),
        "extract_s": extract_s,
        "probe_s": time.monotonic() - start,
    }
