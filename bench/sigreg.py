"""Time SIGReg forward + backward for the paper's table 6 grid, per Epps-Pulley path.

    python bench/sigreg.py [--grid paper|small] [--device cpu|cuda]
        [--paths auto recurrence materialised compiled] [--baselines naive algorithm1 lightly] [--out FILE]

On a GPU, the run whose output is committed (about 2 minutes on an H100):

    python bench/sigreg.py --device cuda --out bench/results/sigreg-cuda.txt

One table per path of lejepa's SIGReg ("ours", lejepa.sigreg.PATHS): "recurrence"
(over knots), "materialised" (cos/sin of about 2 sqrt(knots) angles per entry,
batched matmuls), "compiled" (torch.compile of the direct formula; CUDA graphs on
CUDA; its compile falls in the warm-up) and "auto" (what SIGReg picks on that device:
materialised on CUDA up to N*M*knots = 2**27, recurrence above it and on CPU). Each row: mean +- std over --repeats
runs after --warmup, the peak extra memory of one pass, the launches of one
forward + backward, the paper's V100 time (lejepa.tables.PAPER_TABLE6) and
ours / paper. Launches: on CUDA the kernels (and memcpy/memset) in
torch.profiler's trace, and the host syncs; on CPU the dispatched aten ops that
are not views (the recurrence's CPU branch advances one knot per op over blocks
of rows, so its CPU count is far above its GPU count; the materialised path's is
the same on both).

Then the baselines on the same inputs: the straightforward (N, M, knots)
implementation ("naive"), the paper's Algorithm 1 as printed ("algorithm1") and
lightly's SIGReg when installed, with auto / baseline. The last line is
`ratio_vs_baseline: X`, auto / naive at N=2048, M=512, 17 knots.

The "small" grid (default on CPU) skips the paper's most expensive rows
(N=8192 and 32768, M=8192, 256 knots), which take minutes on a few CPU cores.
"""

import argparse
import importlib.util
import os
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lejepa.sigreg import PATHS
from lejepa.tables import PAPER_TABLE6, PAPER_TABLE6_DEVICE
from lejepa.timing import make_step_function, time_sigreg

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
BASELINES = ("naive", "algorithm1", "lightly")


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
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS), help="SIGReg paths to time")
    parser.add_argument(
        "--baselines", nargs="*", choices=BASELINES, default=list(BASELINES),
        help="timed beside ours (lightly only when installed); none: --baselines",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dim", type=int, default=512, help="embedding dimension D")
    parser.add_argument("--out", default=None, help="also write the printed tables to this file")
    return parser.parse_args()


class _CountOps(TorchDispatchMode):
    """Counts dispatched aten ops that are not views."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.count += 1
        return func(*args, **(kwargs or {}))


CUDA_SYNCS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")


def count_launches(step_function, z, device):
    """Launches of one forward + backward: (kernels, host syncs) on CUDA from
    torch.profiler, (aten ops, None) on CPU. (None, None) if the profiler fails."""
    z.grad = None
    step_function(z).backward()  # warm: caches, allocator
    z.grad = None
    if device == "cpu":
        try:
            with _CountOps() as counter:
                step_function(z).backward()
        except RuntimeError as error:  # torch.compile refuses to run under a dispatch mode
            print(f"# op count failed: {str(error).splitlines()[0]}", file=sys.stderr)
            return None, None
        return counter.count, None
    from torch.profiler import ProfilerActivity, profile

    try:
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiler:
            step_function(z).backward()
        events = profiler.events()
    except Exception as error:  # the profiler needs CUPTI; the timings do not
        print(f"# kernel count failed: {error!r}", file=sys.stderr)
        return None, None
    kernels = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    syncs = sum(1 for e in events if e.name in CUDA_SYNCS)
    return kernels, syncs


def main():
    args = parse_args()
    grid_name = args.grid or ("paper" if args.device == "cuda" else "small")
    grid = (PAPER_GRID if grid_name == "paper" else SMALL_GRID) + [RATIO_ROW]
    baselines = [b for b in args.baselines if b != "lightly" or importlib.util.find_spec("lightly") is not None]
    out = open(args.out, "w") if args.out else None

    def emit(line=""):
        print(line, flush=True)
        if out is not None:
            out.write(line + "\n")
            out.flush()

    device_name = (
        torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    )
    commit = os.popen("git rev-parse --short HEAD 2>/dev/null").read().strip() or "unknown"
    emit(f"# SIGReg forward+backward, D={args.dim}, float32, {device_name}, torch {torch.__version__}, "
         f"commit {commit}, grid={grid_name}")  # fmt: skip
    emit(f"# mean +- std over {args.repeats} runs after {args.warmup} warm-up; peak = extra memory of one pass")
    emit(f"# paper: {PAPER_TABLE6_DEVICE}; ours/paper < 1 is faster than the paper")
    if args.device == "cpu":
        # on a shared machine other processes inflate both the times and their spread
        emit(f"# load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        emit("# launches on cpu: dispatched aten ops that are not views (see the docstring)")
    else:
        emit("# launches on cuda: kernels + memcpy/memset in torch.profiler's trace; syncs: host waits")
    if "lightly" in args.baselines and "lightly" not in baselines:
        emit("# lightly not installed: its column is skipped")

    def time(n, m, knots, impl, path="auto"):
        return time_sigreg(
            n=n, m=m, knots=knots, d=args.dim, repeats=args.repeats, warmup=args.warmup,
            device=args.device, impl=impl, path=path,
        )  # fmt: skip

    ours = {}
    for path in args.paths:
        emit()
        emit(f"## ours, path={path}")
        emit(f"{'N':>6} {'M':>5} {'knots':>5} | {'ms':>18} {'peak MB':>9} {'launches':>8} {'syncs':>5} |"
             f" {'paper ms':>8} {'ours/paper':>10}")  # fmt: skip
        for n, m, knots in grid:
            result = ours[path, n, m, knots] = time(n, m, knots, "ours", path)
            generator = torch.Generator().manual_seed(1234)
            z = torch.randn(n, args.dim, generator=generator).to(args.device).requires_grad_(True)
            step_function = make_step_function(impl="ours", m=m, knots=knots, d=args.dim, device=args.device, path=path)
            launches, syncs = count_launches(step_function, z, args.device)
            paper = PAPER_TABLE6.get((n, m, knots))
            line = (
                f"{n:>6} {m:>5} {knots:>5} | {result['mean_ms']:>9.3f} +- {result['std_ms']:<6.3f}"
                f" {result['peak_mem_mb']:>9.1f} {launches if launches is not None else '?':>8}"
                f" {syncs if syncs is not None else '-':>5} |"
            )
            if paper is not None:
                line += f" {paper[0]:>8.3f} {result['mean_ms'] / paper[0]:>10.2f}"
            else:
                line += f" {'-':>8} {'-':>10}"
            emit(line)

    ratio_vs_baseline = None
    reference = "auto" if "auto" in args.paths else args.paths[0]
    if baselines:
        emit()
        emit(f"## baselines, ours = path {reference}")
        emit(f"{'N':>6} {'M':>5} {'knots':>5} |" + "".join(f" {b + ' ms':>18} {'peak MB':>9} |" for b in baselines)
             + "".join(f" {'ours/' + b:>15}" for b in baselines))  # fmt: skip
        for n, m, knots in grid:
            results = {b: time(n, m, knots, b) for b in baselines}
            line = f"{n:>6} {m:>5} {knots:>5} |"
            for b in baselines:
                r = results[b]
                line += f" {r['mean_ms']:>9.3f} +- {r['std_ms']:<6.3f} {r['peak_mem_mb']:>9.1f} |"
            mine = ours[reference, n, m, knots]["mean_ms"]
            line += "".join(f" {mine / results[b]['mean_ms']:>15.3f}" for b in baselines)
            emit(line)
            if (n, m, knots) == RATIO_ROW and "naive" in results:
                ratio_vs_baseline = mine / results["naive"]["mean_ms"]
    if ratio_vs_baseline is not None:
        emit(f"ratio_vs_baseline: {ratio_vs_baseline:.4f}")
    if out is not None:
        out.close()


if __name__ == "__main__":
    main()
