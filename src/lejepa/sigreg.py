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

Two paths compute the Epps-Pulley sums, exact against each other (``path=``):

- "recurrence" (``lejepa.stats.ecf_sums``): exp(i t_k x) by repeated complex
  multiplication over the knots, closed-form backward by Horner's rule, O(N * M)
  extra memory; its kernel launches grow with the knots (about 80 on a GPU at
  N = M = 512, 16 knots, forward plus backward);
- "materialised" (``materialised_epps_pulley``): the knots factor as k = a B + b, so
  exp(i t_k x) = exp(i a B dt x) exp(i b dt x); it materialises cos and sin of the
  A + B (about 2 sqrt(knots)) angles of each (sample, direction), and one batched
  matmul over samples gives all the sums, the statistic and its closed-form backward
  (one more batched matmul) in one autograd function: about 20 kernel launches with
  the projection, whatever the knots (chunks over M when the table exceeds
  MATERIALISED_CHUNK_ENTRIES).

- "compiled" (``compiled_epps_pulley``): the statistic written directly on the (N, M,
  knots) angles, as the straightforward implementation is, and handed to torch.compile,
  which fuses the angles into the reductions over samples (forward) and knots (backward)
  so they are never held in memory; on CUDA in mode "reduce-overhead", which replays
  forward and backward as one CUDA graph each. The first call of a shape compiles
  (seconds to a minute). One process only: under torch.distributed it is "materialised".

"auto" (the default) takes "materialised" on CUDA when N * M * knots is at most
AUTO_MATERIALISED_MAX_ENTRIES and "recurrence" otherwise and on CPU (where it is the
faster one). It does not take "compiled" until a GPU timing shows where it is faster.

A test of your own: pass ``test=`` a function from projections (N, M) to one
statistic per column (M,); under torch.distributed it receives the projections
of the global batch (all-gathered, like the sorting statistics).
"""

from __future__ import annotations

import contextlib
import math
from functools import lru_cache
from typing import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from lejepa import stats

__all__ = [
    "SIGReg",
    "TESTS",
    "DIRECTIONS",
    "PATHS",
    "random_directions",
    "global_sum",
    "global_count",
    "materialised_epps_pulley",
    "compiled_epps_pulley",
    "choose_path",
]

DIRECTIONS = ("gaussian", "sobol")

PATHS = ("auto", "recurrence", "materialised", "compiled")

# "auto" takes the materialised path on CUDA up to this N * M * knots. Timed on an
# H200 (bench/results/sigreg-cuda.txt), it is the faster path up to 2**26 (N = 8192,
# M = 512, 16 knots: 2.9 ms against the recurrence's 3.7) and the slower one from
# 2**28 (N = 32768, M = 512: 17.5 ms against 6.8; N = M = 8192: 51.3 against 22.7).
AUTO_MATERIALISED_MAX_ENTRIES = 2**27

# The materialised path holds at most about this many entries of its (M, N, 2A + 2B)
# table at once (chunks over M; at least one direction per chunk): 512 MiB in float32.
MATERIALISED_CHUNK_ENTRIES = 2**27

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
# Epps-Pulley, materialised path
# --------------------------------------------------------------------------


def _knot_factors(knots: int) -> tuple[int, int]:
    """(A, B) with A B >= knots and A + 2B smallest (the table's columns): knot
    k = a B + b, a < A outer and b < B inner steps (the A B - knots extra are padding)."""
    return min(
        ((math.ceil(knots / inner), inner) for inner in range(1, knots + 1)),
        key=lambda factors: (factors[0] + 2 * factors[1], factors[1]),
    )


@lru_cache(maxsize=64)
def _constants(t_max, knots, dtype, device):
    """Cached per quadrature, dtype and device, for A, B = _knot_factors(knots), dt the knot step:

    frequencies, offsets (2, 1, A + 2B): cos(f x + o) gives, for p = 0 and p = 1,
        [cos alpha_a, cos beta_b, sin beta_b] and [sin alpha_a, -sin beta_b, cos beta_b],
        alpha_a = a B dt x, beta_b = b dt x (sin(.) = cos(. - pi/2));
    negative_target (A, 2B): -[exp(-t_k^2 / 2) | 0] at k = a B + b (0 on padding knots);
    weights (A * 2B,): [w_k | w_k], the quadrature weights (0 on padding knots);
    gradient_factor (A, 2B): [2 w_k t_k | -2 w_k t_k].
    """
    outer, inner = _knot_factors(knots)
    t, gaussian_cf, quadrature_weights = stats.quadrature(t_max=t_max, knots=knots)  # float64 (K,)
    dt = t_max / (knots - 1)
    alpha = torch.arange(outer, dtype=torch.float64) * (inner * dt)  # (A,)
    beta = torch.arange(inner, dtype=torch.float64) * dt  # (B,)
    frequencies = torch.cat([alpha, beta, beta]).expand(2, -1).clone()  # (2, A + 2B)
    half_pi = math.pi / 2
    offsets = torch.zeros(2, outer + 2 * inner, dtype=torch.float64)
    offsets[0, outer + inner :] = -half_pi  # sin beta
    offsets[1, :outer] = -half_pi  # sin alpha
    offsets[1, outer : outer + inner] = half_pi  # -sin beta

    def on_grid(values):  # (K,) -> (A, B), zero on the padding knots
        padded = torch.zeros(outer * inner, dtype=torch.float64)
        padded[:knots] = values
        return padded.reshape(outer, inner)

    cf, w, wt = on_grid(gaussian_cf), on_grid(quadrature_weights), on_grid(2 * quadrature_weights * t)
    constants = {
        "frequencies": frequencies[:, None, :],
        "offsets": offsets[:, None, :],
        "negative_target": -torch.cat([cf, torch.zeros_like(cf)], 1),
        "weights": torch.cat([w, w], 1).flatten(),
        "gradient_factor": torch.cat([wt, -wt], 1),
    }
    return outer, inner, {key: value.to(device=device, dtype=dtype) for key, value in constants.items()}


def _trig_table(x_by_direction: Tensor, constants: dict) -> Tensor:
    """cos(f x_nm + o) for one chunk of directions: x^T (Mc, N) contiguous ->
    (Mc, 2, N, A + 2B) contiguous (each direction's block is contiguous for the
    batched matmuls)."""
    return torch.addcmul(constants["offsets"], x_by_direction[:, None, :, None], constants["frequencies"]).cos_()


def _left_right(table: Tensor, outer: int) -> tuple[Tensor, Tensor]:
    """The table as L (Mc, 2N, A) = [cos alpha; sin alpha] and R (Mc, 2N, 2B) =
    [[cos beta, sin beta]; [-sin beta, cos beta]] (views)."""
    chunk, _, n, columns = table.shape
    return table[..., :outer].reshape(chunk, 2 * n, outer), table[..., outer:].reshape(chunk, 2 * n, columns - outer)


def _ecf_sums_of_chunk(table: Tensor, outer: int) -> Tensor:
    """[sum_n cos(t_k x_n) | sum_n sin(t_k x_n)] on the (a, b) grid, (Mc, A, 2B): one
    batched matmul over samples, L^T R = [ca cb - sa sb | ca sb + sa cb] (angle addition)."""
    left, right = _left_right(table, outer)
    return left.mT @ right


def _gradient_of_chunk(table: Tensor, coefficients: Tensor, outer: int) -> Tensor:
    """grad_x = sum_{p, a} L (R @ H) for one chunk: table (Mc, 2, N, A + 2B),
    coefficients H^T (Mc, A, 2B) -> (N, Mc)."""
    left, right = _left_right(table, outer)
    chunk, _, n, _ = table.shape
    per_alpha = (right @ coefficients.mT) * left  # (Mc, 2N, A)
    return per_alpha.reshape(chunk, 2, n, outer).sum((1, 3)).T  # (N, Mc)


def _chunk_size(n: int, columns: int, chunk_entries: int) -> int:
    """Directions per chunk so that the table (Mc, 2, N, columns) stays within
    chunk_entries (at least one direction)."""
    return max(1, chunk_entries // (2 * n * columns))


@contextlib.contextmanager
def _full_precision_matmul(device: torch.device):
    """Float32 matmuls in full precision (not TF32) on CUDA inside the block: the sums
    over samples need float32 resolution. The TF32 setting is restored through the API
    that set it (torch refuses to read one API's setting after the other set it)."""
    matmul = torch.backends.cuda.matmul
    if device.type != "cuda":
        yield
        return
    try:
        legacy = matmul.allow_tf32
    except RuntimeError:  # set through fp32_precision (torch >= 2.9)
        legacy = None
    if legacy is not None:
        setting, full, previous = "allow_tf32", False, legacy
        tf32 = legacy
    else:
        setting, full, previous = "fp32_precision", "ieee", matmul.fp32_precision
        tf32 = (torch.backends.fp32_precision if previous == "none" else previous) == "tf32"
    if not tf32:
        yield
        return
    setattr(matmul, setting, full)
    try:
        yield
    finally:
        setattr(matmul, setting, previous)


class _MaterialisedEppsPulley(torch.autograd.Function):
    """The Epps-Pulley statistic per direction (``lejepa.stats.epps_pulley``, as the
    recurrence path computes it) with a fixed number of kernel launches.

    The knots factor as t_k = k dt, k = a B + b, so t_k x = alpha_a + beta_b with
    alpha_a = a B dt x and beta_b = b dt x. The table holds cos and sin of the A + B
    angles per (sample, direction) (``_constants``), and by angle addition
        [C_k | S_k] = [sum_n cos(t_k x_n) | sum_n sin(t_k x_n)] = L^T R,
    one batched matmul over the samples (``_ecf_sums_of_chunk``). Under
    torch.distributed the sums are all-reduced (the global batch). Then with
    E = [C / N - exp(-t^2/2) | S / N] the statistic is N sum_k w_k |E_k|^2.

    Backward (closed form): dT/dC_k = 2 w_k Ec_k, dT/dS_k = 2 w_k Es_k, and
        grad_x = sum_k t_k (g_S_k cos(t_k x) - g_C_k sin(t_k x)) = sum_{p, a} L (R @ H),
        H^T = [t g_S | -t g_C] (A, 2B) (under torch.distributed all-reduced, as
        ``global_sum``'s backward), one more batched matmul with the same table.
    The table is kept for backward when it is one chunk, recomputed per chunk otherwise,
    so extra memory stays within ``chunk_entries``.
    """

    @staticmethod
    def forward(ctx, x, t_max, knots, chunk_entries):
        # x (N, M) -> statistic (M,)
        outer, inner, constants = _constants(t_max, knots, x.dtype, x.device)
        per_chunk = _chunk_size(x.shape[0], outer + 2 * inner, chunk_entries)
        chunks = x.T.contiguous().split(per_chunk)  # (Mc, N) contiguous
        with _full_precision_matmul(x.device):
            tables = [_trig_table(chunk, constants) for chunk in chunks] if len(chunks) == 1 else None
            sums = (
                _ecf_sums_of_chunk(tables[0], outer)
                if tables
                else torch.cat([_ecf_sums_of_chunk(_trig_table(chunk, constants), outer) for chunk in chunks])
            )  # (M, A, 2B)
        n = global_count(x.shape[0], like=sums)
        if _is_distributed():
            dist.all_reduce(sums, op=dist.ReduceOp.SUM)
            error = (sums / n).add_(constants["negative_target"])  # (M, A, 2B)
        else:
            error = torch.add(constants["negative_target"], sums, alpha=1.0 / n)
        statistic = torch.mv(error.square().flatten(1), constants["weights"]).mul_(n)  # (M,)
        ctx.save_for_backward(x, error, *(tables or ()))  # x: recomputing the chunks
        ctx.per_chunk, ctx.outer, ctx.constants = per_chunk, outer, constants
        return statistic

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_statistic):
        x, error, *table = ctx.saved_tensors
        # H^T = [t g_S | -t g_C] = [2 w t Es | -2 w t Ec] * grad: (M, A, 2B)
        coefficients = error.roll(error.shape[-1] // 2, dims=-1).mul_(ctx.constants["gradient_factor"])
        coefficients.mul_(grad_statistic[:, None, None])
        if _is_distributed():
            dist.all_reduce(coefficients, op=dist.ReduceOp.SUM)
        with _full_precision_matmul(x.device):
            if table:
                return _gradient_of_chunk(table[0], coefficients, ctx.outer), None, None, None
            per_chunk = zip(x.T.contiguous().split(ctx.per_chunk), coefficients.split(ctx.per_chunk))
            grad = torch.cat(
                [_gradient_of_chunk(_trig_table(c, ctx.constants), h, ctx.outer) for c, h in per_chunk], dim=1
            )
        return grad, None, None, None


def materialised_epps_pulley(
    x: Tensor, *, t_max: float = 3.0, knots: int = 17, chunk_entries: int | None = None
) -> Tensor:
    """``lejepa.stats.epps_pulley`` per column, over the global batch under torch.distributed,
    with a fixed number of kernel launches (see ``_MaterialisedEppsPulley``).

    Args:
        x: this process's samples, (N, M); half precision is computed in float32.
        t_max, knots: the quadrature, ``knots`` points on [0, t_max].
        chunk_entries: at most this many table entries at once (default
            MATERIALISED_CHUNK_ENTRIES); more make chunks over M.

    Returns:
        The statistic per column, (M,).
    """
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    if chunk_entries is None:
        chunk_entries = MATERIALISED_CHUNK_ENTRIES
    stats.quadrature(t_max=t_max, knots=knots)  # validates t_max and knots
    return _MaterialisedEppsPulley.apply(x, float(t_max), knots, int(chunk_entries))


# --------------------------------------------------------------------------
# Epps-Pulley, compiled path
# --------------------------------------------------------------------------


def _epps_pulley_on_angles(x: Tensor, t: Tensor, gaussian_cf: Tensor, weights: Tensor) -> Tensor:
    """``lejepa.stats.epps_pulley`` per column written on the angles, for torch.compile.
    x (N, M), t, gaussian_cf, weights (K,) -> (M,)."""
    angles = x[:, :, None] * t  # (N, M, K): compiled, it is fused into the two reductions
    cos_error = torch.cos(angles).mean(0) - gaussian_cf  # (M, K)
    sin_mean = torch.sin(angles).mean(0)  # (M, K)
    # a weighted sum rather than a matvec, so no TF32 setting can touch it
    return x.shape[0] * ((cos_error.square() + sin_mean.square()) * weights).sum(-1)  # (M,)


@lru_cache(maxsize=None)
def _compiled_on(device_type: str):
    """The compiled ``_epps_pulley_on_angles`` for one device type (CUDA: CUDA graphs)."""
    mode = "reduce-overhead" if device_type == "cuda" else None
    return torch.compile(_epps_pulley_on_angles, mode=mode, fullgraph=True)


def compiled_epps_pulley(x: Tensor, *, t_max: float = 3.0, knots: int = 17) -> Tensor:
    """``lejepa.stats.epps_pulley`` per column, one process, through torch.compile (see the
    module docstring; the first call of a shape, dtype or device compiles).

    Args:
        x: samples, (N, M); half precision is computed in float32.
        t_max, knots: the quadrature, ``knots`` points on [0, t_max].

    Returns:
        The statistic per column, (M,).
    """
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    t, gaussian_cf, weights = stats.quadrature(t_max=t_max, knots=knots, dtype=x.dtype, device=x.device)
    return _compiled_on(x.device.type)(x, t, gaussian_cf, weights)


def choose_path(x: Tensor, *, knots: int, path: str = "auto") -> str:
    """The path ``path`` resolves to for projections x (N, M): "auto" is "materialised"
    on CUDA when N * M * knots <= AUTO_MATERIALISED_MAX_ENTRIES, else "recurrence";
    "compiled" under torch.distributed is "materialised" (it sums one process's samples)."""
    if path == "compiled" and _is_distributed():
        return "materialised"
    if path != "auto":
        return path
    small = x.shape[0] * x.shape[1] * knots <= AUTO_MATERIALISED_MAX_ENTRIES
    return "materialised" if x.device.type == "cuda" and small else "recurrence"


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
        path:
            How the Epps-Pulley sums are computed (the other tests ignore it): "recurrence"
            (``lejepa.stats.ecf_sums``), "materialised" (``materialised_epps_pulley``),
            "compiled" (``compiled_epps_pulley``, one process), or "auto" (``choose_path``:
            materialised on CUDA up to AUTO_MATERIALISED_MAX_ENTRIES, recurrence otherwise
            and on CPU). The paths agree to rounding.

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
        path: str = "auto",
    ) -> None:
        super().__init__()
        if not isinstance(num_slices, int) or num_slices < 1:
            raise ValueError(f"num_slices must be an integer >= 1, got {num_slices!r}")
        if not callable(test) and test not in TESTS:
            raise ValueError(f"test must be one of {sorted(TESTS)} or a function, got {test!r}")
        if directions not in DIRECTIONS:
            raise ValueError(f"directions must be one of {DIRECTIONS}, got {directions!r}")
        if path not in PATHS:
            raise ValueError(f"path must be one of {PATHS}, got {path!r}")
        stats.quadrature(t_max=t_max, knots=knots)  # validates t_max and knots
        self.num_slices = num_slices
        self.t_max = float(t_max)
        self.knots = knots
        self.test = test
        self.directions = directions
        self.path = path
        self._cached_directions = (None, None)

    def extra_repr(self) -> str:
        test = getattr(self.test, "__name__", repr(self.test)) if callable(self.test) else repr(self.test)
        return (
            f"num_slices={self.num_slices}, t_max={self.t_max}, knots={self.knots}, "
            f"test={test}, directions={self.directions!r}, path={self.path!r}"
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
            path = choose_path(projections, knots=self.knots, path=self.path)
            if path == "materialised":
                return materialised_epps_pulley(projections, t_max=self.t_max, knots=self.knots)
            if path == "compiled":
                return compiled_epps_pulley(projections, t_max=self.t_max, knots=self.knots)
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
