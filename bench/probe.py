"""Time the frozen linear probe (lejepa.probe.linear) against scikit-learn on real features.

    python bench/probe.py [--train features/.../train.pt] [--test features/.../test.pt] [--threads 2]

Both sides run the same protocol on the same standardised features: the L2 strength is
chosen over lejepa.probe.DEFAULT_L2_GRID (C = 1 / (l2 * num_fit) for scikit-learn) by
accuracy on a stratified 1 / 5 holdout of train, walking the grid from strong to weak and
stopping after 3 strengths without improvement, then the probe is refit on all of train
with the same C and tested on test. Ours is lejepa.probe.linear (preconditioned full-batch
L-BFGS, float32); the reference is scikit-learn's LogisticRegression (lbfgs, multinomial,
float64, tol 1e-4, max_iter 1000) warm-started along the grid (its ``warm_start``), with
scikit-learn's own stratified holdout (train_test_split), so the two may pick neighbouring
strengths. Times include standardisation, not reading the files.

The two are run alternately ``--repeats`` times (the machine may be shared: the load
average before and after each run is printed and saved), and each side's median time
counts; the process's CPU time (all threads) is measured beside wall time, as it is less
sensitive to other jobs. A row with the commit goes to ``--out`` (JSON lines); the last
printed line is ``ratio_vs_sklearn: X``, our median wall time / scikit-learn's.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from lejepa import probe
from lejepa.features import load_features
from lejepa.recipe import code_commit

REPO = Path(__file__).resolve().parents[1]
FEATURES = REPO / "features" / "cifar10_resnet18_1ep" / "cifar10"
HOLDOUT = 0.2  # lejepa.probe.linear's first of 5 folds above max_cv_samples
PATIENCE = 3  # config/probe.yaml's linear.patience


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=FEATURES / "train.pt", help="feature file (lejepa.features)")
    parser.add_argument("--test", type=Path, default=FEATURES / "test.pt")
    parser.add_argument("--threads", type=int, default=2, help="torch and scikit-learn (BLAS) threads")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs of each side")
    parser.add_argument("--seed", type=int, default=0, help="seed of both holdout splits")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "probe.jsonl")
    return parser.parse_args()


def sklearn_probe(train_x, train_y, test_x, test_y, *, seed: int) -> dict:
    """Standardise, choose C on a stratified holdout along the grid (warm starts, patience),
    refit on all of train -> accuracy (%), C, the holdout accuracy per grid strength."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    train_z, test_z = scaler.transform(train_x), scaler.transform(test_x)
    fit_z, held_z, fit_y, held_y = train_test_split(
        train_z, train_y, test_size=HOLDOUT, stratify=train_y, random_state=seed
    )
    model = LogisticRegression(max_iter=1000, warm_start=True)
    selection, best, best_c, since_best = {}, -1.0, None, 0
    for l2 in sorted(probe.DEFAULT_L2_GRID, reverse=True):
        c = 1.0 / (l2 * len(fit_y))
        selection[float(l2)] = 100.0 * model.set_params(C=c).fit(fit_z, fit_y).score(held_z, held_y)
        if selection[float(l2)] > best:
            best, best_c, since_best = selection[float(l2)], c, 0
        else:
            since_best += 1
        if since_best == PATIENCE:
            break
    final = LogisticRegression(C=best_c, max_iter=1000).fit(train_z, train_y)
    return {"accuracy": 100.0 * final.score(test_z, test_y), "C": best_c, "selection_accuracy": selection}


def timed(function, *args, **kwargs) -> tuple[dict, dict]:
    """(function's result, {seconds: wall, cpu_seconds: this process's CPU time over all its
    threads, load: 1-minute load average before and after})."""
    load_before, cpu_start, start = os.getloadavg()[0], time.process_time(), time.perf_counter()
    result = function(*args, **kwargs)
    return result, {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "load": (load_before, os.getloadavg()[0]),
    }


def report(repeat: int, side: str, run: dict) -> None:
    print(f"repeat {repeat} {side:8s} {run['seconds']:8.1f} s wall {run['cpu_seconds']:8.1f} s CPU  "
          f"top-1 {run['accuracy']:.2f}%  C {run['C']:.3g}  strengths tried {len(run['selection_accuracy'])}  "
          f"load average {run['load'][0]:.1f} -> {run['load'][1]:.1f}", flush=True)  # fmt: skip


def main():
    args = parse_args()
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    train, test = load_features(args.train), load_features(args.test)
    train_x, train_y = train["features"], train["labels"]
    test_x, test_y = test["features"], test["labels"]
    arrays = [a.numpy() for a in (train_x, train_y, test_x, test_y)]
    print(f"# linear probe on {args.train} {tuple(train_x.shape)}, test {tuple(test_x.shape)}; "
          f"{args.threads} threads, {os.cpu_count()} cores; torch {torch.__version__}")  # fmt: skip

    runs = {"ours": [], "sklearn": []}
    for repeat in range(1, args.repeats + 1):
        ours, clock = timed(probe.linear, train_x, train_y, test_x, test_y, seed=args.seed, device="cpu")
        runs["ours"].append({**clock, "accuracy": ours["accuracy"], "C": ours["C"],
                             "selection_accuracy": ours["selection_accuracy"]})  # fmt: skip
        report(repeat, "ours", runs["ours"][-1])
        theirs, clock = timed(sklearn_probe, *arrays, seed=args.seed)
        runs["sklearn"].append({**clock, **theirs})
        report(repeat, "sklearn", runs["sklearn"][-1])

    median = {side: float(np.median([r["seconds"] for r in runs[side]])) for side in runs}
    median_cpu = {side: float(np.median([r["cpu_seconds"] for r in runs[side]])) for side in runs}
    accuracy = {side: runs[side][-1]["accuracy"] for side in runs}
    ratio = median["ours"] / median["sklearn"]
    row = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "commit": code_commit(REPO),
        "train": str(args.train),
        "test": str(args.test),
        "threads": args.threads,
        "cores": os.cpu_count(),
        "repeats": args.repeats,
        "median_s": median,
        "median_cpu_s": median_cpu,
        "cpu_ratio_vs_sklearn": median_cpu["ours"] / median_cpu["sklearn"],
        "accuracy": accuracy,
        "accuracy_gap": accuracy["ours"] - accuracy["sklearn"],
        "ratio_vs_sklearn": ratio,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as out:
        out.write(json.dumps(row) + "\n")
    print(f"median: ours {median['ours']:.1f} s wall ({median_cpu['ours']:.1f} s CPU), sklearn "
          f"{median['sklearn']:.1f} s wall ({median_cpu['sklearn']:.1f} s CPU); CPU-time ratio "
          f"{row['cpu_ratio_vs_sklearn']:.3f}")  # fmt: skip
    print(f"top-1 ours "
          f"{accuracy['ours']:.2f}%, sklearn {accuracy['sklearn']:.2f}% (gap {row['accuracy_gap']:+.2f}); "
          f"row appended to {args.out}")  # fmt: skip
    print(f"ratio_vs_sklearn: {ratio:.3f}", flush=True)


if __name__ == "__main__":
    main()
