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

A test of your own: pass ``test=`` a function from projections (N, M) to one
statistic per column (M,); under torch.distributed it receives the projections
of the global batch (all-gathered, like the sorting statistics).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

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


def _is_distributed() -> bool:
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


def global_sum(tensor: Tensor) -> Tensor:
    """Sum over processes with the gradient convention above (identity alone).

    Args:
        tensor: this process's partial sums, any shape.

    Returns:
        The sum over processes, same shape; ``tensor`` itself outside torch.distributed.
    """
    return _AllReduceSum.apply(tensor) if _is_distributed() else tensor


def global_count(n: int, *, like: Tensor) -> int | Tensor:
    """Total number of samples over processes.

    Args:
        n: this process's number of samples.
        like: a tensor whose dtype and device the count takes under torch.distributed.

    Returns:
        ``n`` itself outside torch.distributed, else the total as a 0-d tensor like ``like``.
    """
    if not _is_distributed():
        return n
    count = torch.tensor(float(n), dtype=like.dtype, device=like.device)
    dist.all_reduce(count, op=dist.ReduceOp.SUM)
    return count


# --------------------------------------------------------------------------
# Directions
# --------------------------------------------------------------------------


def random_directions(*, dim: int, num_slices: int, step: int, kind: str = "gaussian") -> Tensor:
    """M unit directions in R^D, a deterministic function of ``step`` (independent of the
    global RNG).

    Args:
        dim: the embedding dimension D.
        num_slices: the number of directions M.
        step: the seed (the training step).
        kind: "gaussian": normalised N(0, I) draws from a torch.Generator seeded by step.
            "sobol": the paper's quasi-Monte-Carlo directions: scrambled Sobol points
            (seed = step) mapped through the inverse normal CDF, then normalised.

    Returns:
        The directions as the columns of a (D, M) float64 CPU tensor.
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

    Attributes:
        num_slices:
            Number of directions M.
        t_max, knots:
            Epps-Pulley quadrature: ``knots`` points equally spaced on [0, t_max].
        test:
            One of ``TESTS`` (statistics of ``lejepa.stats``), or a function of your own
            from projections (N, M) to one statistic per column (M,), larger = less normal.
        directions:
            "gaussian" or "sobol" (see ``random_directions``).

    Examples:

        >>> sigreg = SIGReg(num_slices=256)
        >>> loss = sigreg(embeddings, step=step)  # embeddings (N, D) or (V, N, D)
        >>> # a test of your own: one statistic per column of the projections
        >>> sigreg = SIGReg(test=lambda projections: projections.mean(0) ** 2)
    """

    def __init__(
        self,
        *,
        num_slices: int = 256,
        t_max: float = 3.0,
        knots: int = 17,
        test: str | Callable[[Tensor], Tensor] = "epps_pulley",
        directions: str = "gaussian",
    ) -> None:
        super().__init__()
        if not isinstance(num_slices, int) or num_slices < 1:
            raise ValueError(f"num_slices must be an integer >= 1, got {num_slices!r}")
        if not callable(test) and test not in TESTS:
            raise ValueError(f"test must be one of {sorted(TESTS)} or a function, got {test!r}")
        if directions not in DIRECTIONS:
            raise ValueError(f"directions must be one of {DIRECTIONS}, got {directions!r}")
        stats.quadrature(t_max=t_max, knots=knots)  # validates t_max and knots
        self.num_slices = num_slices
        self.t_max = float(t_max)
        self.knots = knots
        self.test = test
        self.directions = directions
        self._cached_directions = (None, None)

    def extra_repr(self) -> str:
        test = getattr(self.test, "__name__", repr(self.test)) if callable(self.test) else repr(self.test)
        return (
            f"num_slices={self.num_slices}, t_max={self.t_max}, knots={self.knots}, "
            f"test={test}, directions={self.directions!r}"
        )

    def directions_for(self, *, dim: int, step: int, device: torch.device | str, dtype: torch.dtype) -> Tensor:
        """The (D, M) unit directions of ``step`` on ``device`` in ``dtype`` (cached per step)."""
        key = (int(step), dim, str(device), dtype)
        if self._cached_directions[0] != key:
            a = random_directions(dim=dim, num_slices=self.num_slices, step=step, kind=self.directions)
            self._cached_directions = (key, a.to(device=device, dtype=dtype))
        return self._cached_directions[1]

    def forward(self, z: Tensor, *, step: int) -> Tensor:
        """Returns the SIGReg statistic of the embeddings.

        Args:
            z:
                Embeddings (N, D), or (V, N, D) for V views of the same N samples: the
                statistic is then computed per view with the same directions and
                averaged over views. Half precision is computed in float32, outside autocast.
            step:
                The training step. It seeds the directions, drawn on CPU in float64, so
                they are the same on every process and device (cached for the current step).

        Returns:
            The mean of the test over directions (and views), a scalar tensor.
        """
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

    def statistic_per_direction(self, projections: Tensor) -> Tensor:
        """The test on each column of the projections, over the global batch.

        Args:
            projections: this process's projections z @ A, (N, M).

        Returns:
            One statistic per direction, (M,).
        """
        if callable(self.test):
            if _is_distributed():
                projections = _AllGatherRows.apply(projections)
            return self.test(projections)
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


def _global_sum_over_samples(x: Tensor) -> Tensor:
    return global_sum(x.sum(dim=0))
