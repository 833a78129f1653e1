"""SIGReg: Sketched Isotropic Gaussian Regularization.

Balestriero & LeCun, "LeJEPA" (arXiv 2511.08544), definition 2 / algorithm 1:
project the embeddings z (N, D) on M random unit directions A (D, M), test
each projection z @ a_m against N(0, 1) with a univariate statistic, and
average over directions. The directions are redrawn every training step from
a generator seeded by the step, so every process draws the same ones.

Under torch.distributed the statistic is that of the global batch:

- Epps-Pulley all-reduces the cos/sin sums of the empirical characteristic
  function (K x M numbers) and uses the global N;
- moment statistics all-reduce their moment sums;
- sorting statistics all-gather the projections.

Every process then holds the same statistic. The collectives' backward sums
the gradient over processes (each process differentiates the same global
statistic, so its slice receives world_size times the one-process
gradient); DDP's gradient averaging divides by world_size again, so the
model's gradients equal those of one process holding the whole batch.
(Treating the collectives as constants in backward instead leaves them
scaled by 1/world_size.)
"""

import torch
import torch.distributed as dist
from torch import nn

from lejepa import stats

__all__ = ["SIGReg", "TESTS", "DIRECTIONS", "random_directions", "global_sum", "global_count"]

DIRECTIONS = ("gaussian", "sobol")

# test name -> how it is reduced across processes
TESTS = {
    "epps_pulley": "characteristic_function",
    "jarque_bera": "moments",
    "moments": "moments",
    "cramer_von_mises": "sorting",
    "anderson_darling": "sorting",
    "watson": "sorting",
    "shapiro_wilk": "sorting",
}

_SORTING_STATISTICS = {
    "cramer_von_mises": stats._cramer_von_mises_columns,
    "anderson_darling": stats._anderson_darling_columns,
    "watson": stats._watson_columns,
    "shapiro_wilk": stats._shapiro_wilk_columns,
}


# --------------------------------------------------------------------------
# Collectives with the gradient convention described above
# --------------------------------------------------------------------------


def _is_distributed():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes; backward sums the incoming gradients over processes."""

    @staticmethod
    def forward(ctx, tensor):
        total = tensor.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


class _AllGatherRows(torch.autograd.Function):
    """Concatenate every process's rows (row counts may differ); backward sums
    the gradient of the whole gathered tensor over processes and keeps this
    process's rows."""

    @staticmethod
    def forward(ctx, local):
        world_size, rank = dist.get_world_size(), dist.get_rank()
        count = torch.tensor([local.shape[0]], device=local.device)
        counts = [torch.zeros_like(count) for _ in range(world_size)]
        dist.all_gather(counts, count)
        counts = [int(c) for c in counts]
        padded = local.new_zeros((max(counts),) + tuple(local.shape[1:]))
        padded[: local.shape[0]] = local
        gathered = [torch.empty_like(padded) for _ in range(world_size)]
        dist.all_gather(gathered, padded.contiguous())
        ctx.start = sum(counts[:rank])
        ctx.stop = ctx.start + counts[rank]
        return torch.cat([g[:c] for g, c in zip(gathered, counts)])

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.stop]


def global_sum(tensor):
    """Sum over processes with the gradient convention above (identity alone)."""
    return _AllReduceSum.apply(tensor) if _is_distributed() else tensor


def global_count(n, *, like):
    """Total number of samples over processes: n itself outside
    torch.distributed, else a 0-d tensor like ``like``."""
    if not _is_distributed():
        return n
    count = torch.tensor(float(n), dtype=like.dtype, device=like.device)
    dist.all_reduce(count, op=dist.ReduceOp.SUM)
    return count


# --------------------------------------------------------------------------
# Directions
# --------------------------------------------------------------------------


def random_directions(*, dim, num_slices, step, kind="gaussian"):
    """M unit directions in R^D as columns of a (D, M) float64 CPU tensor,
    a deterministic function of ``step`` (independent of the global RNG).

    "gaussian": normalised N(0, I) draws from torch.Generator seeded by step.
    "sobol": the paper's quasi-Monte-Carlo directions: scrambled Sobol points
    (seed = step) mapped through the inverse normal CDF, then normalised.
    """
    if kind == "gaussian":
        generator = torch.Generator(device="cpu").manual_seed(int(step))
        directions = torch.randn(dim, num_slices, generator=generator, dtype=torch.float64)
    elif kind == "sobol":
        if dim > torch.quasirandom.SobolEngine.MAXDIM:
            raise ValueError(
                f"directions='sobol' supports dim <= {torch.quasirandom.SobolEngine.MAXDIM}, got {dim}"
            )
        engine = torch.quasirandom.SobolEngine(dimension=dim, scramble=True, seed=int(step))
        uniform = engine.draw(num_slices, dtype=torch.float64).clamp(1e-9, 1 - 1e-9)  # (M, D)
        directions = torch.special.ndtri(uniform).T
    else:
        raise ValueError(f"directions must be one of {DIRECTIONS}, got {kind!r}")
    return directions / directions.norm(dim=0, keepdim=True)


class SIGReg(nn.Module):
    """Sketched Isotropic Gaussian Regularization (LeJEPA, definition 2).

    SIGReg(z) = mean over m of test(z @ a_m), a_m the M = ``num_slices`` unit
    directions of step ``step``.

    Args:
        num_slices: number of directions M.
        t_max, knots: Epps-Pulley quadrature (knots equally spaced on [0, t_max]).
        test: one of ``TESTS`` (all from ``lejepa.stats``).
        directions: "gaussian" or "sobol".

    forward(z, *, step): z (N, D) -> scalar. z may also be (V, N, D) (V views
    of the same N samples): the statistic is then computed per view with the
    same directions and averaged over views. ``step`` (an int, the training
    step) seeds the directions; they are drawn on CPU in float64, so they are
    the same on every process and device, and cached for the current step.
    Half-precision z is computed in float32, outside autocast.
    """

    def __init__(self, *, num_slices=256, t_max=3.0, knots=17, test="epps_pulley", directions="gaussian"):
        super().__init__()
        if not isinstance(num_slices, int) or num_slices < 1:
            raise ValueError(f"num_slices must be an integer >= 1, got {num_slices!r}")
        if test not in TESTS:
            raise ValueError(f"test must be one of {sorted(TESTS)}, got {test!r}")
        if directions not in DIRECTIONS:
            raise ValueError(f"directions must be one of {DIRECTIONS}, got {directions!r}")
        stats.quadrature(t_max=t_max, knots=knots)  # validates t_max and knots
        self.num_slices = num_slices
        self.t_max = float(t_max)
        self.knots = knots
        self.test = test
        self.directions = directions
        self._cached_directions = (None, None)

    def extra_repr(self):
        return (
            f"num_slices={self.num_slices}, t_max={self.t_max}, knots={self.knots}, "
            f"test={self.test!r}, directions={self.directions!r}"
        )

    def directions_for(self, *, dim, step, device, dtype):
        """(D, M) unit directions of ``step`` on device/dtype (cached per step)."""
        key = (int(step), dim, str(device), dtype)
        if self._cached_directions[0] != key:
            a = random_directions(dim=dim, num_slices=self.num_slices, step=step, kind=self.directions)
            self._cached_directions = (key, a.to(device=device, dtype=dtype))
        return self._cached_directions[1]

    def forward(self, z, *, step):
        stats.check_samples(z, name="z", ndims=(2, 3), expected="(N, D) or (V, N, D)")
        if z.dtype in (torch.float16, torch.bfloat16):
            z = z.float()  # the statistics need float32 resolution
        with torch.autocast(device_type=z.device.type, enabled=False):
            directions = self.directions_for(dim=z.shape[-1], step=step, device=z.device, dtype=z.dtype)
            projections = z @ directions  # (N, M) or (V, N, M)
            if projections.ndim == 3:
                # views become extra columns: (N, V * M); mean over all = mean of per-view means
                projections = projections.transpose(0, 1).reshape(projections.shape[1], -1)
            return self.statistic_per_direction(projections).mean()

    def statistic_per_direction(self, projections):
        """The test on each column of projections (N, M) -> (M,), global batch."""
        family = TESTS[self.test]
        n_local = projections.shape[0]
        if family == "characteristic_function":
            cos_sums, sin_sums = stats.ecf_sums(projections, t_max=self.t_max, knots=self.knots)
            n = global_count(n_local, like=cos_sums)
            return stats.epps_pulley_from_ecf(
                global_sum(cos_sums), global_sum(sin_sums), n=n, t_max=self.t_max, knots=self.knots
            )
        if family == "moments":
            n = global_count(n_local, like=projections)
            if self.test == "jarque_bera":
                return stats._jarque_bera_columns(projections, total=_global_sum_over_samples, n=n)
            return stats._moments_columns(projections, total=_global_sum_over_samples, n=n)
        if _is_distributed():
            projections = _AllGatherRows.apply(projections)
        return _SORTING_STATISTICS[self.test](projections)


def _global_sum_over_samples(x):
    return global_sum(x.sum(dim=0))
