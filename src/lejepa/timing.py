"""Time SIGReg forward + backward (the paper's table 6).

    time_sigreg(n=2048, m=512, knots=17) -> {"mean_ms", "std_ms", "peak_mem_mb"}

impl:
    "ours"     lejepa.SIGReg, its Epps-Pulley path chosen by ``path``: "recurrence"
               (over knots, closed-form backward, O(N * M) extra memory),
               "materialised" (cos/sin of about 2 sqrt(knots) angles per entry,
               batched matmuls, a fixed number of kernel launches) or "auto"
               (materialised on CUDA for table 6's sizes, recurrence on CPU);
    "naive"    the straightforward implementation that materialises the
               (N, M, knots) angles and lets autograd differentiate cos/sin;
    "algorithm1"  the paper's Algorithm 1 as printed: complex exp of the
               (N, M, knots) angles, knots = torch.linspace(-5, 5, knots),
               torch.trapz, autograd (``algorithm1_sigreg``);
    "lightly"  lightly's SIGReg (lightly.loss.lejepa_loss), when installed.

Knot conventions: "ours" and "naive" put ``knots`` knots on [0, 3] (the
official code's default) and double the integral; "algorithm1" puts ``knots``
knots on [-5, 5]. The same ``knots`` means the same number of evaluated
points (the same work per sample and direction), not the same rule.

Every implementation gets the same z (N, D). "ours", "naive" and "algorithm1" use the same
directions (those of one fixed step, drawn once before timing), so the
timing covers projection, statistic and backward; lightly draws its own
directions with torch.randn inside its forward, as it does in training.

peak_mem_mb is the peak of memory allocated during one forward + backward
beyond what was allocated before it (inputs excluded): CUDA's allocator
statistics on GPU, the profiler's allocation events on CPU.
"""

import statistics
import time

import torch

from lejepa import stats
from lejepa.sigreg import SIGReg

__all__ = ["time_sigreg", "make_step_function", "naive_sigreg", "algorithm1_sigreg", "IMPLEMENTATIONS"]

IMPLEMENTATIONS = ("ours", "naive", "algorithm1", "lightly")

_STEP = 0


def naive_sigreg(z, directions, *, t_max=3.0, knots=17):
    """The straightforward Epps-Pulley SIGReg: (N, M, knots) cos and sin,
    differentiated by autograd. z (N, D), directions (D, M) -> scalar."""
    t, gaussian_cf, weights = stats.quadrature(t_max=t_max, knots=knots, dtype=z.dtype, device=z.device)
    projections = z @ directions  # (N, M)
    angles = projections[:, :, None] * t  # (N, M, K)
    cos_mean = torch.cos(angles).mean(0)  # (M, K)
    sin_mean = torch.sin(angles).mean(0)
    squared_error = (cos_mean - gaussian_cf) ** 2 + sin_mean**2
    return (z.shape[0] * (squared_error @ weights)).mean()


def algorithm1_sigreg(z, directions, *, t_max=5.0, knots=17):
    """The paper's Algorithm 1 (single process), written as printed: z (N, D), directions
    (D, M) unit columns -> the Epps-Pulley statistic averaged over the M directions.

    ecf = exp(i t a^T z) averaged over samples at ``knots`` points t = linspace(-t_max,
    t_max, knots), err = |ecf - exp(-t^2/2)|^2 exp(-t^2/2), statistic = N trapz(err, t).
    By symmetry it equals ``lejepa.stats.epps_pulley`` with (knots + 1) // 2 knots on
    [0, t_max] (see lejepa.synthetic.quadrature.algorithm1_knots)."""
    t = torch.linspace(-t_max, t_max, knots, device=z.device, dtype=z.dtype)
    exp_f = torch.exp(-0.5 * t**2)
    x_t = (z @ directions).unsqueeze(2) * t  # (N, M, K)
    ecf = (1j * x_t).exp().mean(0)  # (M, K) complex
    err = (ecf - exp_f).abs().square().mul(exp_f)
    statistic = torch.trapz(err, t, dim=1) * z.shape[0]  # (M,)
    return statistic.mean()


def make_step_function(*, impl, m, knots, d, device, path="auto"):
    """A function z (N, d) -> SIGReg(z) for the chosen implementation (``path``: ours only)."""
    if impl == "ours":
        sigreg = SIGReg(num_slices=m, knots=knots, path=path)
        sigreg.directions_for(dim=d, step=_STEP, device=device, dtype=torch.float32)  # fill cache
        return lambda z: sigreg(z, step=_STEP)
    if impl == "naive":
        directions = SIGReg(num_slices=m, knots=knots).directions_for(
            dim=d, step=_STEP, device=device, dtype=torch.float32
        )
        return lambda z: naive_sigreg(z, directions, knots=knots)
    if impl == "algorithm1":
        directions = SIGReg(num_slices=m, knots=knots).directions_for(
            dim=d, step=_STEP, device=device, dtype=torch.float32
        )
        return lambda z: algorithm1_sigreg(z, directions, knots=knots)
    if impl == "lightly":
        try:
            from lightly.loss.lejepa_loss import SIGReg as LightlySIGReg
        except ImportError as error:
            raise ImportError("impl='lightly' needs the lightly package (pip install lightly)") from error
        return LightlySIGReg(knots=knots, t_max=3.0, num_vectors=m).to(device)
    raise ValueError(f"impl must be one of {IMPLEMENTATIONS}, got {impl!r}")


def _synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _forward_backward(step_function, z):
    z.grad = None
    step_function(z).backward()


def _peak_memory_mb(step_function, z, device):
    """Peak extra memory (MiB) of one forward + backward."""
    z.grad = None  # free the previous gradient before measuring
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        _forward_backward(step_function, z)
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step_function(z).backward()
    events = [e for e in profiler.profiler.kineto_results.events() if e.name() == "[memory]"]
    live, peak = 0, 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak / 2**20


def time_sigreg(*, n, m, knots, d=512, repeats=10, warmup=3, device="cpu", impl="ours", path="auto"):
    """Mean and std (ms) over ``repeats`` timed forward + backward passes of
    SIGReg on z (n, d) float32 with m directions and ``knots`` knots, after
    ``warmup`` untimed ones, and the peak extra memory (MiB) of one pass
    (``path``: the Epps-Pulley path of impl "ours")."""
    if repeats < 2:
        raise ValueError(f"repeats must be >= 2 to give a std, got {repeats}")
    generator = torch.Generator().manual_seed(1234)
    z = torch.randn(n, d, generator=generator).to(device).requires_grad_(True)
    step_function = make_step_function(impl=impl, m=m, knots=knots, d=d, device=device, path=path)
    for _ in range(warmup):
        _forward_backward(step_function, z)
    times_ms = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        _forward_backward(step_function, z)
        _synchronize(device)
        times_ms.append(1e3 * (time.perf_counter() - start))
    peak_mem_mb = _peak_memory_mb(step_function, z, device)
    return {
        "mean_ms": statistics.fmean(times_ms),
        "std_ms": statistics.stdev(times_ms),
        "peak_mem_mb": peak_mem_mb,
    }


# Bytes per (sample, direction, knot) that "naive" and "algorithm1" keep alive in one forward +
# backward (measured on CPU: 2048 MiB at N = 8192, M = 512, 16 knots).
MATERIALISED_BYTES_PER_ELEMENT = 32


def materialised_mb(*, n, m, knots, **_) -> float:
    """Peak memory (MiB) of an implementation that materialises the (N, M, knots) angles."""
    return MATERIALISED_BYTES_PER_ELEMENT * n * m * knots / 2**20


def time_grid(grid, *, impl="ours", baseline="algorithm1", repeats=10, warmup=3, device="cpu", log=None,
              max_mem_mb=None):  # fmt: skip
    """`time_sigreg` for every row of ``grid`` (dicts n, m, knots, d): one measurement per row,
    ours under its own keys and ``baseline`` (timed beside it, same device, same z and
    directions; "none" for no baseline) under ``baseline_<key>``. A row where a materialising
    implementation would need more than ``max_mem_mb`` is not run: its cells are NaN."""
    measurements = []
    for row in grid:
        measurement = dict(row)
        for name, prefix in ((impl, ""), (baseline, "baseline_")):
            if name == "none":
                continue
            if name in ("naive", "algorithm1") and max_mem_mb is not None and materialised_mb(**row) > max_mem_mb:
                if log is not None:
                    log.info("%s %s: skipped, needs ~%.0f MiB > %s", name, row, materialised_mb(**row), max_mem_mb)
                measurement.update({prefix + key: float("nan") for key in ("mean_ms", "std_ms", "peak_mem_mb")})
                continue
            timed = time_sigreg(**row, repeats=repeats, warmup=warmup, device=device, impl=name)
            if log is not None:
                log.info("%s %s: %s", name, row, timed)
            measurement.update({prefix + key: value for key, value in timed.items()})
        measurements.append(measurement)
    return measurements


def summarise_table6(frame) -> dict:
    """The numbers table 6's caption and the README quote, formatted as there, from
    tables/table6*.csv alone (``tests/test_synthetic_captions.py`` recomputes them).

    "small rows": N <= 8192, M <= 8192, at most 64 knots, except N = M = 8192. Ratios are
    ours / paper. With a baseline column (the paper's Algorithm 1), its ratio range too."""
    largest = (frame.N == 8192) & (frame.M == 8192)
    small = frame[(frame.N <= 8192) & (frame.M <= 8192) & (frame.knots <= 64) & ~largest]
    ratio = frame.mean_ms / frame.paper_mean_ms
    summary = {
        "device": str(frame.device.iloc[0]),
        "torch": str(frame.torch_version.iloc[0]),
        "commit": str(frame.commit.iloc[0]),
        "small rows ms": f"{small.mean_ms.min():.1f}-{small.mean_ms.max():.1f}",
        "small rows ratio": (
            f"{(small.mean_ms / small.paper_mean_ms).min():.1f}-{(small.mean_ms / small.paper_mean_ms).max():.1f}"
        ),
        "rows faster than paper": str(int((ratio < 1).sum())),
        "rows": str(len(frame)),
    }
    named_rows = (((8192, 8192, 16), "N=M=8192"), ((32768, 512, 16), "N=32768"), ((512, 512, 256), "256 knots"))
    for (n, m, knots), label in named_rows:
        row = frame[(frame.N == n) & (frame.M == m) & (frame.knots == knots)]
        if len(row):
            summary[f"{label} ms"] = f"{row.mean_ms.iloc[0]:.1f}"
            summary[f"{label} ratio"] = f"{row.mean_ms.iloc[0] / row.paper_mean_ms.iloc[0]:.2f}"
    if "baseline_mean_ms" in frame.columns:
        speedup = (frame.baseline_mean_ms / frame.mean_ms).dropna()
        summary["baseline"] = str(frame.baseline.iloc[0])
        summary["baseline speedup"] = f"{speedup.min():.1f}-{speedup.max():.1f}"
    return summary
