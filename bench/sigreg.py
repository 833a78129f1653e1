"""Time SIGReg forward + backward for the paper's table 6 grid.

    python bench/sigreg.py [--grid paper|small] [--device cpu|cuda]

For every (N, M, knots) it times lejepa's SIGReg ("ours"), the
straightforward (N, M, knots) implementation ("naive"), the paper's Algorithm 1
as printed ("algorithm1": complex exp, knots on [-5, 5]) and lightly's SIGReg
when installed, on the same inputs in the same run (mean and std over
--repeats runs after --warmup), and prints their peak extra memory and time
ratios. The last line is `ratio_vs_baseline: X`, ours / naive at N=2048,
M=512, 17 knots.

The "small" grid (default on CPU) skips the paper's most expensive rows
(N=8192 and 32768, M=8192, 256 knots), which take minutes on a few CPU cores.
"""

import argparse
import importlib.util
import os

import torch

from lejepa.timing import time_sigreg

# table 6 of the paper (N, M, knots), D = 512
PAPER_GRID = [
    (512, 512, 16),
    (512, 512, 64),
    (512, 512, 256),
    (2048, 512, 16),
    (8192, 512, 16),
    (8192, 8192, 16),
    (32768, 512, 16),
    (512, 2048, 16),
    (512, 8192, 16),
]
SMALL_GRID = [(512, 512, 16), (512, 512, 64), (2048, 512, 16), (512, 2048, 16)]
RATIO_ROW = (2048, 512, 17)


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--grid", choices=["paper", "small"], default=None, help="default: paper on cuda, small on cpu"
    )
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dim", type=int, default=512, help="embedding dimension D")
    return parser.parse_args()


def main():
    args = parse_args()
    grid_name = args.grid or ("paper" if args.device == "cuda" else "small")
    grid = (PAPER_GRID if grid_name == "paper" else SMALL_GRID) + [RATIO_ROW]
    implementations = ["ours", "naive", "algorithm1"]
    if importlib.util.find_spec("lightly") is not None:
        implementations.append("lightly")
    device_name = (
        torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    )
    print(f"# SIGReg forward+backward, D={args.dim}, float32, {device_name}, grid={grid_name}")
    print(
        f"# mean +- std over {args.repeats} runs after {args.warmup} warm-up; peak = extra memory of one pass"
    )
    if args.device == "cpu":
        # on a shared machine other processes inflate both the times and their spread
        print(f"# load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if "lightly" not in implementations:
        print("# lightly not installed: its column is skipped")

    header = f"{'N':>6} {'M':>5} {'knots':>5} |" + "".join(
        f" {impl + ' ms':>18} {'peak MB':>9} |" for impl in implementations
    )
    header += " ours/naive ours/algorithm1" + (" ours/lightly" if "lightly" in implementations else "")
    print(header)
    ratio_vs_baseline = None
    for n, m, knots in grid:
        results = {
            impl: time_sigreg(
                n=n,
                m=m,
                knots=knots,
                d=args.dim,
                repeats=args.repeats,
                warmup=args.warmup,
                device=args.device,
                impl=impl,
            )
            for impl in implementations
        }
        line = f"{n:>6} {m:>5} {knots:>5} |"
        for impl in implementations:
            r = results[impl]
            line += f" {r['mean_ms']:>9.3f} +- {r['std_ms']:<6.3f} {r['peak_mem_mb']:>9.1f} |"
        ratio = results["ours"]["mean_ms"] / results["naive"]["mean_ms"]
        line += f" {ratio:>10.3f} {results['ours']['mean_ms'] / results['algorithm1']['mean_ms']:>15.3f}"
        if "lightly" in results:
            line += f" {results['ours']['mean_ms'] / results['lightly']['mean_ms']:>12.3f}"
        print(line, flush=True)
        if (n, m, knots) == RATIO_ROW:
            ratio_vs_baseline = ratio
    print(f"ratio_vs_baseline: {ratio_vs_baseline:.4f}")


if __name__ == "__main__":
    main()
