"""Time SIGReg forward + backward (the paper's table 6).

    time_sigreg(n=2048, m=512, knots=17) -> {"mean_ms", "std_ms", "peak_mem_mb"}

impl:
    "ours"     lejepa.SIGReg (recurrence over knots, closed-form backward,
               O(N * M) extra memory);
    "naive"    the straightforward implementation that materialises the
               (N, M, knots) angles and lets autograd differentiate cos/sin;
    "lightly"  lightly's SIGReg (lightly.loss.lejepa_loss), when installed.

Every implementation gets the same z (N, D). "ours" and "naive" use the same
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

__all__ = ["time_sigreg", "naive_sigreg", "IMPLEMENTATIONS"]

IMPLEMENTATIONS = ("ours", "naive", "lightly")

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


def _make_step_function(*, impl, m, knots, d, device):
    """A function z -> SIGReg(z) for the chosen implementation."""
    if impl == "ours":
        sigreg = SIGReg(num_slices=m, knots=knots)
        sigreg.directions_for(dim=d, step=_STEP, device=device, dtype=torch.float32)  # fill cache
        return lambda z: sigreg(z, step=_STEP)
    if impl == "naive":
        directions = SIGReg(num_slices=m, knots=knots).directions_for(
            dim=d, step=_STEP, device=device, dtype=torch.float32
        )
        return lambda z: naive_sigreg(z, directions, knots=knots)
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


def time_sigreg(*, n, m, knots, d=512, repeats=10, warmup=3, device="cpu", impl="ours"):
    """Mean and std (ms) over ``repeats`` timed forward + backward passes of
    SIGReg on z (n, d) float32 with m directions and ``knots`` knots, after
    ``warmup`` untimed ones, and the peak extra memory (MiB) of one pass."""
    if repeats < 2:
        raise ValueError(f"repeats must be >= 2 to give a std, got {repeats}")
    generator = torch.Generator().manual_seed(1234)
    z = torch.randn(n, d, generator=generator).to(device).requires_grad_(True)
    step_function = _make_step_function(impl=impl, m=m, knots=knots, d=d, device=device)
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
