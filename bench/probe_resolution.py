"""Linear probe of one trained encoder at several input sizes (the train-test resolution
discrepancy: Touvron et al., "Fixing the train-test resolution discrepancy", 2019).

    python bench/probe_resolution.py --checkpoint RUN/final.pt --sizes 32 40 48 64 \
        --label "recipe.jsonl row 19" [--dataset cifar10] [--out bench/results/probe_resolution.jsonl]

The encoder trains on RandomResizedCrop views: a global view crops 30-100% of the image's
area and resizes it to `global_size`, so objects appear larger in training than in the
whole image resized to the same side. The workflow's probes (and bench/recipe.py) extract
features at `global_size`; this script re-extracts them with the same eval transform
(resize + centre crop, lejepa.views.eval_transform) at each --sizes and fits the same
linear probe (lejepa.recipe.linear_probe: L2 chosen on a holdout of train, top-1 on test).
Only feature extraction costs more at a larger size (about (size / global_size)^2).

One JSON line per size is appended to --out: the checkpoint's sha256 and --label, the
commit of this code, the size, the encoder's global_size, top-1 and the seconds taken.
The last line printed is `best_size: S (top-1 X, +Y points over global_size)`.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import torch

from lejepa.data.format import sha256_of
from lejepa.io import append_json_lines
from lejepa.models import load_encoder
from lejepa.recipe import code_commit, linear_probe

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "results" / "probe_resolution.jsonl"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="a run's final.pt")
    parser.add_argument("--sizes", type=int, nargs="+", required=True, help="probe input sides in pixels")
    parser.add_argument("--label", required=True, help="where the checkpoint comes from (recorded with each row)")
    parser.add_argument("--dataset", default=None, help="default: the dataset the encoder was trained on")
    parser.add_argument("--data-root", type=Path, default=REPO / "data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if any(size < 8 for size in args.sizes):
        parser.error(f"--sizes must be at least 8 px, got {args.sizes}")
    return args


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    encoder, run_config = load_encoder(args.checkpoint)
    dataset = args.dataset or run_config["dataset"]
    root = args.data_root / dataset
    if not (root / "meta.json").exists():
        raise ValueError(f"{root} holds no prepared dataset (python -m lejepa.data {dataset} or snakemake)")
    config = {**run_config, "device": "cpu", "threads": args.threads, "workers": 0}
    provenance = {
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": code_commit(REPO),
        "checkpoint_sha256": sha256_of(args.checkpoint),
        "label": args.label,
        "dataset": dataset,
        "backbone": run_config["backbone"],
        "global_size": int(run_config["global_size"]),
        "threads": args.threads,
    }
    rows = []
    for size in args.sizes:
        result = linear_probe(encoder, root, name=dataset, size=size, config=config)
        rows.append({**provenance, "size": size, **result})
        print(f"size {size}: top-1 {result['probe_top1']:.2f} % (features {result['extract_s']:.0f} s, "
              f"probe {result['probe_s']:.0f} s)", flush=True)  # fmt: skip
    append_json_lines(rows, args.out)
    best = max(rows, key=lambda row: row["probe_top1"])
    at_train_size = [row["probe_top1"] for row in rows if row["size"] == provenance["global_size"]]
    gain = f", {best['probe_top1'] - at_train_size[0]:+.2f} points over global_size" if at_train_size else ""
    print(f"rows appended to {args.out}")
    print(f"best_size: {best['size']} (top-1 {best['probe_top1']:.2f}{gain})")
    return rows


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:
        sys.exit(f"error: {error}")
