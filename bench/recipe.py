"""The small-scale recipe (issue 7): pretrain for a fixed wall-clock budget, then a frozen linear probe.

    python bench/recipe.py --dataset cifar10 --minutes 10 [--set lr=4e-3 --set batch_size=128 ...]
                           [--seed 0] [--threads 2] [--out bench/results/recipe.jsonl]
    python bench/recipe.py --dataset cifar10 --minutes 10 --random-init   # the untrained baseline
    python bench/recipe.py --table [--out bench/results/recipe.jsonl]     # markdown table of all rows
    python bench/recipe.py --plot curves.png --rows 3 7                   # loss curves of rows 3 and 7 (the table's #)

Datasets: cifar10, flowers102 (pretrains on the official train split, 1020 images; the
probe trains on train + val, tests on test), tinyimagenet100 (stand-in for ImageNet-100);
any prepared dataset under --data-root works. A missing data/<name> is prepared from the
offline mirror (lejepa.data.prepare, source="mirror", mirror ../shared/datasets).

Setting: config/pretrain.yaml's `small` scale (--scale), backbone resnet18, view sizes
global = min(DATASETS[name].image_size, stored image side) and local = half of it
(flowers102: its mirror stores 96 px, so 96 / 48), the online evaluation on the test
split switched off (eval_split null: the linear probe below is the measurement), then
every --set key=value (any key of lejepa.train.TRAINING_KEYS / RUNTIME_DEFAULTS except
epochs, max_steps_per_epoch and warmup_epochs, which are fitted to the budget).

Fitting the schedule to the budget (`lejepa.recipe.fit_schedule`; this script is the
command line of `lejepa.recipe`). The budget is the training's wall
time as lejepa.train records it (metrics.csv wall_s: every step, data waits, the
end-of-epoch checkpoint and evaluation included; process start, model construction,
this calibration, feature extraction and the probe not included, and reported apart):
  1. Calibrate: lejepa.train.main on the same config for 2 epochs of k steps each
     (--calibration-steps), in a scratch folder. The second epoch gives the steady step
     time s (batch_size / its img_per_s); the wall time between the two epoch ends minus
     k s gives the per-epoch overhead o (checkpoint, evaluation); the first epoch's extra
     time, wall_s[1] - k s - o, is the one-off start-up cost c (first iterations,
     DataLoader workers).
  2. Fit: the engine cuts every epoch to S steps (max_steps_per_epoch; a fresh random
     subset each epoch) and runs E epochs, taking c + E (S s + o) seconds. E is the
     smallest number of epochs for which S = floor((B - c - E o) / (E s)) is at most a
     full pass over the training set, so the budget B holds as many steps as it can with
     the least overhead. warmup_epochs = warmup_fraction * E (default: the scale's own
     ratio, small: 1 / 10), so the linear warm-up and the cosine to zero end with the
     last step, at the budget. With o = c = 0 the step count is floor(B / s) up to E - 1
     steps of rounding: linear in the budget.
  The actual training then runs as planned, not cut by a clock: when the shared machine's
  speed changes it over- or undershoots; `train_wall_s` in the result says by how much.
  --random-init trains nothing (no calibration; steps 0) and records the same minutes.

Output: a summary, then the last line `linear_probe_top1: X` (top-1 %, test split), and
one JSON line appended to --out (file rewritten to a temporary file, then renamed), with
`commit`: the short hash of the code it ran (`-dirty` with uncommitted changes outside the
outputs; rows from before the bench recorded it say `unknown`, and `added_in_commit` gives the
commit that added them to bench/results/recipe.jsonl).
`epochs_reached` = images seen / training-set size (passes over the data); `engine_epochs`
x `steps_per_epoch` = steps. Numbers on this project's shared 2-core machine swing with
the other jobs (10x seen: 18-23 img/s while another training ran, 210-227 img/s alone):
compare settings run close together, with seeds.

Measured on that machine, idle, 2 threads, CIFAR-10, resnet18, seed 0 (every row, with its
config and curve, in bench/results/recipe.jsonl; the search and its table in docs/recipe.md):
  the `small` defaults, --minutes 60 --calibration-steps 8: 287 img/s, 21 passes (4095
                steps) in 3655 s, final prediction 0.315 / SIGReg 8.58, linear probe 58.67%;
                features 21 s, probe 138 s
  --random-init:  linear probe 24.26% (features 32 s, probe 151 s)
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch
import yaml

from lejepa import train
from lejepa.data import DATASETS, EncodedImages, prepare
from lejepa.features import random_init_encoder
from lejepa.io import append_json_lines
from lejepa.plots import plt, save_figure, use_paper_style
from lejepa.recipe import (
    calibrate,
    code_commit,
    fit_schedule,
    linear_probe,
    parse_overrides,
    train_on_schedule,
    view_sizes,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "results" / "recipe.jsonl"


# ---------------------------------------------------------------- config and data


def dataset_root(name: str, data_root: Path, mirror_dir: Path) -> Path:
    root = data_root / name
    if not (root / "meta.json").exists():
        if name not in DATASETS:
            raise ValueError(f"{root} holds no prepared dataset and {name!r} is not a registered dataset")
        print(f"{root} missing: preparing {name} from the mirror {mirror_dir}", flush=True)
        prepare(name, out_dir=data_root, source="mirror", mirror_dir=mirror_dir)
    return root


def build_config(args, overrides: dict, root: Path) -> tuple[dict, float]:
    """The flat engine config (scale settings + recipe defaults + overrides) and the warm-up fraction."""
    pretrain = yaml.safe_load((REPO / "config" / "pretrain.yaml").read_text())["pretrain"]
    if args.scale not in pretrain["scales"]:
        raise ValueError(
            f"--scale {args.scale!r} is not in config/pretrain.yaml; defined: {sorted(pretrain['scales'])}"
        )
    settings = pretrain["scales"][args.scale]["settings"]
    global_size, local_size = view_sizes(args.dataset, root)
    spec = {
        "scale": args.scale,
        "dataset": args.dataset,
        "backbone": "resnet18",
        "global_size": global_size,
        "local_size": local_size,
        "eval_split": None,
        "progress": False,
        **overrides,
        "seed": args.seed,
        "data_dir": str(root),
    }
    if args.threads is not None:
        spec["threads"] = args.threads
    config, _ = train.resolve_run({**pretrain, "runs": {"recipe": spec}}, "recipe")
    warmup_fraction = args.warmup_fraction
    if warmup_fraction is None:
        warmup_fraction = settings["warmup_epochs"] / settings["epochs"]
    return config, warmup_fraction


def setting_label(args, overrides: dict) -> str:
    if args.name:
        return args.name
    label = " ".join(f"{k}={v}" for k, v in overrides.items()) or "default"
    return f"random init {label}" if args.random_init else label


# ---------------------------------------------------------------- results file


def read_rows(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: not JSON ({error})") from error
    return rows


def row_commit(row: dict) -> str:
    """The row's commit; for a row from before the bench recorded it, the commit that added it."""
    commit = row.get("commit", "unknown")
    if commit == "unknown" and "added_in_commit" in row:
        return f"unknown (added in {row['added_in_commit']})"
    return commit


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| # | dataset | setting | minutes | img/s | epochs | steps | loss / pred / sigreg "
        "| linear probe top-1 (%) | seed | commit |",
        "|---:|---|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for number, r in enumerate(rows, 1):
        trained = r["steps"] > 0
        losses = f"{r['final_loss']:.3f} / {r['final_prediction']:.3f} / {r['final_sigreg']:.3f}" if trained else "–"
        img_per_s = f"{r['img_per_s']:.0f}" if trained else "–"
        lines.append(
            f"| {number} | {r['dataset']} | {r['setting']} | {r['minutes']:g} | {img_per_s} "
            f"| {r['epochs_reached']:.2f} | "
            f"{r['steps']} | {losses} | {r['probe_top1']:.2f} | {r['seed']} | {row_commit(r)} |"
        )
    return "\n".join(lines)


def plot_curves(rows: list[dict], numbers: list[int], path: Path) -> None:
    """Per-epoch prediction loss, SIGReg and online-probe accuracy against training minutes, one line per row."""
    for number in numbers:
        if not 1 <= number <= len(rows):
            raise ValueError(f"--rows {number}: the results file has rows 1..{len(rows)}")
        if not rows[number - 1]["curve"]:
            raise ValueError(f"row {number} ({rows[number - 1]['setting']}) trained nothing: no curve to plot")
    use_paper_style()
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.8))
    for number in numbers:
        row = rows[number - 1]
        curve = pd.DataFrame(row["curve"])
        label = f"#{number} {row['dataset']} {row['setting']}, {row['minutes']:g} min: probe {row['probe_top1']:.1f}%"
        for ax, column in zip(axes, ("prediction", "sigreg", "online_acc")):
            ax.plot(curve["wall_s"] / 60, curve[column], marker=".", label=label)
    for ax, title in zip(axes, ("prediction loss", "SIGReg", "online probe, training batches (%)")):
        ax.set_title(title)
        ax.set_xlabel("training minutes")
    axes[1].set_yscale("log")
    axes[0].legend(loc="upper center", bbox_to_anchor=(1.7, -0.25), ncol=1, frameon=False)
    save_figure(fig, None, path)


# ---------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", help="cifar10, flowers102, tinyimagenet100 (or any prepared dataset)")
    parser.add_argument("--minutes", type=float, help="training wall-clock budget in minutes")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a pretrain config key (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the scale's)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON-lines results file")
    parser.add_argument("--table", action="store_true", help="print the markdown table of --out and exit")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the loss curves of --rows, then exit")
    parser.add_argument("--rows", type=int, nargs="+", default=[], help="row numbers (the table's #) for --plot")
    parser.add_argument("--random-init", action="store_true", help="probe the untrained encoder (no training)")
    parser.add_argument("--scale", default="small", help="scale of config/pretrain.yaml")
    parser.add_argument(
        "--warmup-fraction",
        type=float,
        default=None,
        help="share of the steps spent warming up (default: the scale's warmup_epochs / epochs)",
    )
    parser.add_argument("--calibration-steps", type=int, default=3, help="steps per calibration epoch (2 epochs)")
    parser.add_argument("--name", default=None, help="setting label in the table (default: the overrides)")
    parser.add_argument("--data-root", type=Path, default=REPO / "data")
    parser.add_argument("--mirror-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="keep the run (final.pt, metrics.csv) here; default: a scratch folder, deleted",
    )
    args = parser.parse_args(argv)
    if args.plot and not args.rows:
        parser.error("--plot needs --rows")
    if not (args.table or args.plot) and (args.dataset is None or args.minutes is None):
        parser.error("--dataset and --minutes are required (or --table)")
    if args.minutes is not None and args.minutes <= 0:
        parser.error(f"--minutes must be positive, got {args.minutes}")
    return args


def main(argv=None) -> dict | None:
    args = parse_args(argv)
    if args.table:
        if not args.out.exists():
            raise ValueError(f"{args.out}: no results yet")
        print(markdown_table(read_rows(args.out)))
        return None
    if args.plot:
        plot_curves(read_rows(args.out), args.rows, args.plot)
        print(f"wrote {args.plot}")
        return None

    overrides = parse_overrides(args.overrides)
    root = dataset_root(args.dataset, args.data_root, args.mirror_dir)
    config, warmup_fraction = build_config(args, overrides, root)
    torch.set_num_threads(config["threads"])
    num_train = len(EncodedImages(root, "train"))
    full_epoch_steps = num_train // config["batch_size"]
    if full_epoch_steps < 1:
        raise ValueError(f"{root}: {num_train} training images make no batch of {config['batch_size']}")
    row = {
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": code_commit(REPO),  # the code the row was made with (-dirty: with uncommitted changes)
        "dataset": args.dataset,
        "setting": setting_label(args, overrides),
        "overrides": overrides,
        "random_init": args.random_init,
        "backbone": config["backbone"],
        "minutes": args.minutes,
        "seed": args.seed,
        "threads": config["threads"],
        "num_train": num_train,
    }

    if args.random_init:
        encoder = random_init_encoder(config, seed=args.seed)
        row.update(
            img_per_s=None,
            engine_epochs=0,
            steps_per_epoch=0,
            steps=0,
            epochs_reached=0.0,
            train_wall_s=0.0,
            final_loss=None,
            final_prediction=None,
            final_sigreg=None,
            curve=[],
        )
    else:
        if args.run_dir is not None and args.run_dir.exists() and any(args.run_dir.iterdir()):
            raise ValueError(f"--run-dir {args.run_dir} is not empty; give a new folder")
        scratch_parent = REPO / "runs" / "recipe"
        scratch_parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"{args.dataset}-", dir=scratch_parent))
        try:
            print(f"calibrating: 2 epochs x {args.calibration_steps} steps ...", flush=True)
            timing = calibrate(config, scratch / "calibration", steps=min(args.calibration_steps, full_epoch_steps))
            schedule = fit_schedule(
                budget_s=60 * args.minutes,
                step_s=timing["step_s"],
                full_epoch_steps=full_epoch_steps,
                warmup_fraction=warmup_fraction,
                epoch_overhead_s=timing["epoch_overhead_s"],
                startup_s=timing["startup_s"],
            )
            print(
                f"calibration: {timing['img_per_s']:.1f} img/s ({timing['step_s']:.3f} s/step), "
                f"{timing['epoch_overhead_s']:.1f} s per epoch, {timing['startup_s']:.1f} s start-up "
                f"({timing['seconds']:.0f} s)\n"
                f"schedule: {schedule['epochs']} epochs x {schedule['steps_per_epoch']} steps = "
                f"{schedule['total_steps']} steps, warm-up {schedule['warmup_epochs']:.2f} epochs, "
                f"predicted {schedule['predicted_s']:.0f} s of {60 * args.minutes:.0f} s",
                flush=True,
            )
            config = {**config, "run": f"recipe-{args.dataset}"}
            encoder, history, config = train_on_schedule(config, schedule, args.run_dir or scratch / "train")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        last = history.iloc[-1]
        step_seconds = config["batch_size"] * history["step"].diff().fillna(history["step"]) / history["img_per_s"]
        steps = int(last["step"])
        row.update(
            calibration=timing,
            schedule=schedule,
            img_per_s=float(steps * config["batch_size"] / step_seconds.sum()),
            engine_epochs=int(last["epoch"]),
            steps_per_epoch=schedule["steps_per_epoch"],
            steps=steps,
            warmup_steps=round(schedule["warmup_epochs"] * schedule["steps_per_epoch"]),
            epochs_reached=steps * config["batch_size"] / num_train,
            train_wall_s=float(last["wall_s"]),
            final_loss=float(last["loss"]),
            final_prediction=float(last["prediction"]),
            final_sigreg=float(last["sigreg"]),
            final_online_acc=float(last["online_acc"]),
            curve=history[["epoch", "step", "loss", "prediction", "sigreg", "online_acc", "lr", "wall_s"]].to_dict(
                "records"
            ),
        )

    print("extracting frozen backbone features ...", flush=True)
    row.update(linear_probe(encoder, root, name=args.dataset, size=config["global_size"], config=config))
    row["config"] = {k: v for k, v in config.items() if k not in ("out_dir", "data_dir")}
    append_json_lines([row], args.out)

    print(
        f"setting: {row['setting']}  ({args.dataset}, {row['backbone']}, seed {args.seed}, "
        f"{config['threads']} threads)"
    )
    if args.random_init:
        print(f"random init: no training (budget {args.minutes:g} min not used)")
    else:
        print(
            f"budget: {args.minutes:g} min; trained {row['train_wall_s']:.1f} s at {row['img_per_s']:.1f} img/s "
            f"(calibration {row['calibration']['img_per_s']:.1f} img/s)\n"
            f"steps: {row['steps']} ({row['engine_epochs']} epochs x {row['steps_per_epoch']}, "
            f"warm-up {row['warmup_steps']}); epochs reached: {row['epochs_reached']:.2f} passes over "
            f"{num_train} images\n"
            f"final epoch: loss {row['final_loss']:.4f}, prediction {row['final_prediction']:.4f}, "
            f"sigreg {row['final_sigreg']:.4f}, online probe on training batches {row['final_online_acc']:.1f}%"
        )
    print(
        f"linear probe: train {row['probe_train_splits']} ({row['num_probe_train']}), test {row['probe_test_split']} "
        f"({row['num_probe_test']}), {row['feature_dim']}-d features; train top-1 {row['probe_train_top1']:.2f}%, "
        f"l2 {row['probe_l2']:.3g} ({row['probe_l2_selection']}); features {row['extract_s']:.0f} s, "
        f"probe {row['probe_s']:.0f} s\n"
        f"row appended to {args.out}"
    )
    print(f"linear_probe_top1: {row['probe_top1']:.2f}", flush=True)
    return row


if __name__ == "__main__":
    try:
        main()
    except (ValueError, train.NonFiniteLoss) as error:
        sys.exit(f"error: {error}")
