"""Goodness-of-fit statistics against the standard normal N(0, 1).

Univariate statistics take ``x`` of shape (N,) or (N, M) and return one
statistic per column, shape () or (M,). They all

- test against N(0, 1) itself (no mean or variance is estimated), except
  Shapiro-Wilk, which is location-scale invariant by construction;
- are differentiable torch functions (sorting-based ones through torch.sort);
- are scaled so that their null distribution does not grow with N (the usual
  "N times a distance" or chi-square-like scaling). Larger = less normal.

Multivariate statistics (BHEP, Henze-Zirkler) take X of shape (N, D) and
return a scalar.

Families, as in section 4.2 of Balestriero & LeCun, "LeJEPA" (arXiv 2511.08544):

- characteristic function: ``epps_pulley`` (the one SIGReg uses);
- empirical CDF (need sorting): ``cramer_von_mises``, ``anderson_darling``,
  ``watson``, ``shapiro_wilk`` (appendix E);
- moments: ``jarque_bera`` (the paper's extended Jarque-Bera), ``moments``;
- multivariate (appendix F): ``bhep``, ``henze_zirkler``.

Each family's private ``_..._columns`` function works on an (N, M) tensor
without validation; ``lejepa.sigreg`` reuses them to reduce across processes.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

__all__ = [
    "epps_pulley",
    "cramer_von_mises",
    "anderson_darling",
    "watson",
    "shapiro_wilk",
    "jarque_bera",
    "moments",
    "bhep",
    "henze_zirkler",
    # building blocks
    "epps_pulley_null_mean",
    "quadrature",
    "ecf_sums",
    "ecf_sums_naive",
    "epps_pulley_from_ecf",
    "shapiro_wilk_w",
    "henze_zirkler_beta",
    "check_samples",
]


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def check_samples(
    x: Tensor,
    *,
    name: str = "x",
    min_samples: int = 2,
    ndims: tuple[int, ...] = (1, 2),
    expected: str = "(N,) or (N, M)",
) -> None:
    """Raise a ValueError naming ``name`` unless x is a finite float tensor with
    ndim in ``ndims`` and at least ``min_samples`` samples.

    Args:
        x: the tensor to check.
        name: its name in the error message.
        min_samples: the fewest samples (dim 0, or dim 1 for 3-d tensors) accepted.
        ndims: the accepted numbers of dimensions.
        expected: the accepted shapes, as the error message describes them.

    Raises:
        TypeError: x is not a tensor.
        ValueError: wrong shape, integer dtype, too few samples, NaN or inf.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {expected}, got {type(x).__name__}")
    shape = tuple(x.shape)
    if x.ndim not in ndims:
        raise ValueError(f"{name} must have shape {expected}, got shape {shape}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating point tensor, got dtype {x.dtype} (shape {shape})")
    n = x.shape[-2] if x.ndim == 3 else x.shape[0]
    if n < min_samples:
        raise ValueError(f"{name} needs at least N={min_samples} samples, got shape {shape}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains non-finite values (NaN or inf), shape {shape}")


def _univariate(statistic_of_columns, x, name="x", min_samples=2):
    """Validate x, run the (N, M) statistic, and give back shape () for x (N,)."""
    check_samples(x, name=name, min_samples=min_samples)
    if x.ndim == 1:
        return statistic_of_columns(x[:, None])[0]
    return statistic_of_columns(x)


def _sum_over_samples(x):
    """Sum over dim 0; lejepa.sigreg swaps in a cross-process sum."""
    return x.sum(dim=0)


# --------------------------------------------------------------------------
# Epps-Pulley (characteristic function)
# --------------------------------------------------------------------------


def quadrature(
    *, t_max: float, knots: int, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor, Tensor]:
    """The Epps-Pulley quadrature on [0, t_max].

    Args:
        t_max: the integration range.
        knots: the number of equally spaced points, t_k = k * t_max / (knots - 1).
        dtype, device: of the returned tensors.

    Returns:
        (t, gaussian_cf, weights), each (knots,): the knots, the N(0, 1) characteristic
        function exp(-t^2/2) there, and the trapezoid weights on [0, t_max] doubled (the
        integrand is even) times the Epps-Pulley weight w(t) = exp(-t^2/2). Cached per
        device and dtype: do not modify them.
    """
    if not isinstance(knots, int) or knots < 2:
        raise ValueError(f"knots must be an integer >= 2, got {knots!r}")
    if not (isinstance(t_max, (int, float)) and math.isfinite(t_max) and t_max > 0):
        raise ValueError(f"t_max must be a positive finite number, got {t_max!r}")
    return _quadrature(float(t_max), knots, dtype, torch.device(device))


@lru_cache(maxsize=64)
def _quadrature(t_max, knots, dtype, device):
    t = torch.linspace(0.0, t_max, knots, dtype=torch.float64)
    dt = t_max / (knots - 1)
    trapezoid = torch.full((knots,), dt, dtype=torch.float64)
    trapezoid[[0, -1]] = dt / 2
    gaussian_cf = torch.exp(-0.5 * t**2)
    weights = 2.0 * trapezoid * gaussian_cf
    return tuple(v.to(device=device, dtype=dtype) for v in (t, gaussian_cf, weights))


def epps_pulley_null_mean(*, t_max: float = 3.0) -> float:
    """E[statistic] under N(0, 1) for the exact integral over [-t_max, t_max]:
    integral of (1 - exp(-t^2)) exp(-t^2/2) dt
    = sqrt(2 pi) erf(T / sqrt 2) - sqrt(2 pi / 3) erf(T sqrt 1.5).

    Args:
        t_max: the integration range T.

    Returns:
        The null mean (1.0526 at T = 3).
    """
    return math.sqrt(2 * math.pi) * math.erf(t_max / math.sqrt(2)) - math.sqrt(2 * math.pi / 3) * math.erf(
        t_max * math.sqrt(1.5)
    )


def ecf_sums_naive(x: Tensor, *, t: Tensor) -> tuple[Tensor, Tensor]:
    """Reference for ``ecf_sums`` that materialises the (N, M, K) tensor of angles.

    Args:
        x: samples, (N, M).
        t: the knots, (K,).

    Returns:
        sum_n cos(t_k x_n) and sum_n sin(t_k x_n), two (K, M) tensors.
    """
    angles = x[:, :, None] * t  # (N, M, K)
    return torch.cos(angles).sum(0).T, torch.sin(angles).sum(0).T


# Re-anchor the power recurrence on an exact exp(i t_k x) every this many
# knots, so the rounding drift of repeated multiplication stays bounded
# (at 1024 knots in float32 the sums are then as accurate as direct cos/sin).
REANCHOR_EVERY = 64

# On CPU the recurrence advances one knot at a time (a complex multiply is
# cheaper than cos + sin) over blocks of rows of about this many entries,
# which stay in cache across knots (about 2x faster than whole tensors).
CPU_BLOCK_ENTRIES = 2**16

# On GPU the cost is one kernel launch per operation, so the recurrence
# advances B knots at a time, exp(i t_{k+b} x) = exp(i t_b x) exp(i t_k x),
# with B as large as keeps N * M * B within this many entries.
GPU_BLOCK_ENTRIES = 2**21


def _unit_phasor(angle):
    """exp(i angle) as a complex tensor (torch.complex of cos and sin is several
    times faster than torch.polar on CPU)."""
    return torch.complex(torch.cos(angle), torch.sin(angle))


def _row_blocks(x):
    """x (N, M) split into blocks of rows for the recurrences (CPU only)."""
    if x.device.type != "cpu":
        return [x]
    rows = max(16, CPU_BLOCK_ENTRIES // x.shape[1])
    return x.split(rows)


def _knots_per_block(x, knots):
    """B, the knots advanced per recurrence step: 1 on CPU; on GPU the
    largest that fits GPU_BLOCK_ENTRIES, balanced over the blocks."""
    if x.device.type == "cpu":
        return 1
    largest = max(1, min(knots, GPU_BLOCK_ENTRIES // x.numel()))
    blocks = math.ceil(knots / largest)
    return math.ceil(knots / blocks)


class _KnotBlocks:
    """exp(i t_k x) for the knots k = 1..K-1, B at a time (knot 0 is exp(0) = 1).

    first[:, b] = exp(i (1 + b) dt x) (N, B, M) and step = exp(i B dt x) (N, 1, M),
    so block j (knots 1 + jB .. jB + B) is first * step^j. Every `anchor_every`
    blocks the chain restarts from the exact phase step^j = exp(i j B dt x).
    With B = 1, first and step are both w = exp(i dt x).
    """

    def __init__(self, x, *, dt, knots):
        self.x, self.dt = x, dt
        self.size = _knots_per_block(x, knots - 1)  # B
        self.count = math.ceil((knots - 1) / self.size)  # J
        self.anchor_every = max(1, REANCHOR_EVERY // self.size)
        self.step = _unit_phasor((self.size * dt) * x)[:, None, :]  # (N, 1, M)
        if self.size == 1:
            self.first = self.step
        else:
            offsets = dt * torch.arange(1, self.size + 1, dtype=x.dtype, device=x.device)  # (B,)
            self.first = _unit_phasor(offsets[:, None] * x[:, None, :])  # (N, B, M)

    def exact_step_power(self, j):
        """step^j = exp(i j B dt x) from cos/sin. (N, 1, M)"""
        return _unit_phasor((j * self.size * self.dt) * self.x)[:, None, :]


def _power_sums(x, *, dt, knots):
    """sum_n exp(i k dt x_n) for k = 0..K-1. x (N, M) -> (K, M) complex."""
    blocks = _KnotBlocks(x, dt=dt, knots=knots)
    sums = [torch.full_like(blocks.step[0], x.shape[0])]  # knot 0: sum of exp(0), (1, M)
    block = blocks.first.clone()  # (N, B, M)
    for j in range(blocks.count):
        if j > 0 and j % blocks.anchor_every == 0:
            block = blocks.first * blocks.exact_step_power(j)
        elif j > 0:
            block.mul_(blocks.step)
        sums.append(block.sum(0))  # (B, M)
    return torch.cat(sums)[:knots]  # (K, M)


def _real_polynomial(x, coefficients, *, dt):
    """Re(sum_{k>=1} c_k exp(i k dt x)) (c_0 is ignored) by Horner's rule over
    the knot blocks: sum_j step^j inner_j, inner_j = sum_b c_{1+jB+b} first_b,
    in segments of `anchor_every` blocks, each multiplied by its exact start
    phase. x (N, M), coefficients (K, M) complex -> (N, M) real."""
    knots, m = coefficients.shape
    blocks = _KnotBlocks(x, dt=dt, knots=knots)
    padded = coefficients.new_zeros(blocks.count * blocks.size, m)
    padded[: knots - 1] = coefficients[1:]
    per_block = padded.reshape(blocks.count, blocks.size, m)  # (J, B, M)
    # With B = 1, first = step = w, so sum_j w^j c_{1+j} w = w * (Horner on the
    # c alone): the inner sums are the coefficients and w multiplies at the end.
    common_factor = blocks.first[:, 0] if blocks.size == 1 else None

    def inner(j):  # sum_b c_{1+jB+b} first_b: (M,) broadcast over rows if B = 1, else (N, M)
        if blocks.size == 1:
            return per_block[j, 0]
        return (blocks.first * per_block[j]).sum(1)

    total = torch.zeros_like(blocks.step[:, 0])  # (N, M) complex
    for start in range(0, blocks.count, blocks.anchor_every):
        stop = min(start + blocks.anchor_every, blocks.count)
        segment = inner(stop - 1).expand_as(total).clone()
        for j in range(stop - 2, start - 1, -1):
            segment.mul_(blocks.step[:, 0]).add_(inner(j))
        if start > 0:
            segment.mul_(blocks.exact_step_power(start)[:, 0])
        total += segment
    if common_factor is not None:
        total.mul_(common_factor)
    return total.real


class _EcfSums(torch.autograd.Function):
    """Sums over samples of cos(t_k x) and sin(t_k x) at equally spaced knots
    t_k = k dt, k = 0..K-1, without the (N, M, K) tensor.

    Forward: w = exp(i dt x) from one cos/sin pair per entry, then
    exp(i t_k x) = w^k by repeated complex multiplication (on GPU B knots at
    a time, see GPU_BLOCK_ENTRIES).
    Backward (closed form): d/dx cos(t x) = -t sin(t x), d/dx sin(t x) = t cos(t x), so
    grad_x = sum_k t_k (g_sin_k cos(t_k x) - g_cos_k sin(t_k x))
           = Re( sum_k c_k w^k ),  c_k = t_k (g_sin_k + i g_cos_k),
    evaluated by Horner's rule. Extra memory O(N * M) (on GPU at most
    GPU_BLOCK_ENTRIES entries more).
    """

    @staticmethod
    def forward(ctx, x, dt, knots):
        # x (N, M) -> cos_sums, sin_sums (K, M)
        ctx.save_for_backward(x)
        ctx.dt = dt
        sums = sum(_power_sums(rows, dt=dt, knots=knots) for rows in _row_blocks(x))
        return sums.real.contiguous(), sums.imag.contiguous()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_cos, grad_sin):
        (x,) = ctx.saved_tensors
        knots = grad_cos.shape[0]
        t = ctx.dt * torch.arange(knots, dtype=x.dtype, device=x.device)[:, None]  # (K, 1)
        coefficients = torch.complex(t * grad_sin, t * grad_cos)  # (K, M)
        grad = torch.cat([_real_polynomial(rows, coefficients, dt=ctx.dt) for rows in _row_blocks(x)])
        return grad, None, None


def ecf_sums(x: Tensor, *, t_max: float, knots: int) -> tuple[Tensor, Tensor]:
    """Sums of the empirical characteristic function at t_k = linspace(0, t_max, knots),
    differentiable, in O(N * M) extra memory.

    Args:
        x: samples, (N, M); half precision is computed in float32.
        t_max: the last knot.
        knots: the number of knots K.

    Returns:
        sum_n cos(t_k x_n) and sum_n sin(t_k x_n), two (K, M) tensors.
    """
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    return _EcfSums.apply(x, float(t_max) / (knots - 1), knots)


def epps_pulley_from_ecf(
    cos_sums: Tensor, sin_sums: Tensor, *, n: int | Tensor, t_max: float, knots: int
) -> Tensor:
    """Epps-Pulley statistic from characteristic-function sums.

    T = N * integral over [-t_max, t_max] of |ecf(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt,
    ecf(t) = (1/N) sum_n exp(i t x_n); trapezoid on [0, t_max] doubled.

    Args:
        cos_sums, sin_sums: the sums of ``ecf_sums``, (K, M).
        n: the number of samples behind the sums (int or 0-d tensor).
        t_max, knots: the quadrature the sums were taken at.

    Returns:
        The statistic per column, (M,).
    """
    _, gaussian_cf, weights = quadrature(
        t_max=t_max, knots=knots, dtype=cos_sums.dtype, device=cos_sums.device
    )
    cos_mean = cos_sums / n  # (K, M)
    sin_mean = sin_sums / n
    squared_error = (cos_mean - gaussian_cf[:, None]) ** 2 + sin_mean**2  # (K, M)
    return n * (weights @ squared_error)  # (M,)


def _epps_pulley_columns(x, *, t_max=3.0, knots=17):
    cos_sums, sin_sums = ecf_sums(x, t_max=t_max, knots=knots)
    return epps_pulley_from_ecf(cos_sums, sin_sums, n=x.shape[0], t_max=t_max, knots=knots)


def epps_pulley(x: Tensor, *, t_max: float = 3.0, knots: int = 17) -> Tensor:
    """Epps-Pulley statistic against N(0, 1), the official LeJEPA convention.

    N * integral of |ecf(t) - exp(-t^2/2)|^2 w(t) dt, w(t) = exp(-t^2/2), over
    [-t_max, t_max] by the trapezoid rule on ``knots`` equally spaced points of
    [0, t_max], doubled. Under N(0, 1) its mean is ``epps_pulley_null_mean``
    (1.0526 at t_max = 3) whatever N.

    Args:
        x: samples, (N,) or (N, M): one sample of N values per column.
        t_max: the integration range [-t_max, t_max].
        knots: quadrature points on [0, t_max].

    Returns:
        The statistic, () or (M,): one per column.
    """
    quadrature(t_max=t_max, knots=knots)  # validates t_max, knots
    return _univariate(lambda c: _epps_pulley_columns(c, t_max=t_max, knots=knots), x)


# --------------------------------------------------------------------------
# Empirical-CDF statistics (sorting)
# --------------------------------------------------------------------------


def _ranks(n, like):
    """i = 1..N as a column, (N, 1)."""
    return torch.arange(1, n + 1, dtype=like.dtype, device=like.device)[:, None]


def _cramer_von_mises_columns(x):
    n = x.shape[0]
    cdf = torch.special.ndtr(torch.sort(x, dim=0).values)  # (N, M)
    plotting_positions = (2 * _ranks(n, x) - 1) / (2 * n)
    return 1.0 / (12 * n) + ((cdf - plotting_positions) ** 2).sum(0)


def cramer_von_mises(x: Tensor) -> Tensor:
    """Cramér-von Mises W^2 against N(0, 1) (scipy's convention):
    W^2 = 1/(12N) + sum_i (Phi(x_(i)) - (2i - 1)/(2N))^2.

    Args:
        x: samples, (N,) or (N, M): one sample of N values per column.

    Returns:
        The statistic, () or (M,): one per column.
    """
    return _univariate(_cramer_von_mises_columns, x)


def _anderson_darling_columns(x):
    n = x.shape[0]
    x_sorted = torch.sort(x, dim=0).values  # (N, M)
    # log Phi(x_(i)) + log(1 - Phi(x_(N+1-i))), exact in both tails
    log_cdf = torch.special.log_ndtr(x_sorted)
    log_survival_reversed = torch.special.log_ndtr(-x_sorted.flip(0))
    weights = 2 * _ranks(n, x) - 1
    return -n - (weights * (log_cdf + log_survival_reversed)).sum(0) / n


def anderson_darling(x: Tensor) -> Tensor:
    """Anderson-Darling A^2 against N(0, 1):
    A^2 = -N - (1/N) sum_i (2i - 1) [log Phi(x_(i)) + log(1 - Phi(x_(N+1-i)))],
    with exact log-CDF tails (torch.special.log_ndtr).

    Args:
        x: samples, (N,) or (N, M): one sample of N values per column.

    Returns:
        The statistic, () or (M,): one per column.
    """
    return _univariate(_anderson_darling_columns, x)


def _watson_columns(x):
    n = x.shape[0]
    cdf_mean = torch.special.ndtr(x).mean(0)
    return _cramer_von_mises_columns(x) - n * (cdf_mean - 0.5) ** 2


def watson(x: Tensor) -> Tensor:
    """Watson U^2 against N(0, 1): U^2 = W^2 - N (mean_i Phi(x_i) - 1/2)^2.

    Args:
        x: samples, (N,) or (N, M): one sample of N values per column.

    Returns:
        The statistic, () or (M,): one per column.
    """
    return _univariate(_watson_columns, x)


@lru_cache(maxsize=32)
def _shapiro_wilk_coefficients_list(n):
    """Royston's (1992) approximation of the Shapiro-Wilk coefficients (the one
    scipy.stats.shapiro uses), from Blom's scores m_i = Phi^-1((i - 3/8)/(n + 1/4))."""
    i = torch.arange(1, n + 1, dtype=torch.float64)
    m = torch.special.ndtri((i - 0.375) / (n + 0.25))
    c = m / m.norm()
    if n <= 3:
        return c.tolist()  # n = 2, 3: exact by symmetry
    u = 1.0 / math.sqrt(n)
    a_n = c[-1] + 0.221157 * u - 0.147981 * u**2 - 2.071190 * u**3 + 4.434685 * u**4 - 2.706056 * u**5
    a = c.clone()
    if n <= 5:
        phi = (m @ m - 2 * m[-1] ** 2) / (1 - 2 * a_n**2)
        a = m / phi.sqrt()
        a[0], a[-1] = -a_n, a_n
        return a.tolist()
    a_n1 = c[-2] + 0.042981 * u - 0.293762 * u**2 - 1.752461 * u**3 + 5.682633 * u**4 - 3.582633 * u**5
    phi = (m @ m - 2 * m[-1] ** 2 - 2 * m[-2] ** 2) / (1 - 2 * a_n**2 - 2 * a_n1**2)
    a = m / phi.sqrt()
    a[0], a[1], a[-2], a[-1] = -a_n, -a_n1, a_n1, a_n
    return a.tolist()


def shapiro_wilk_w(x: Tensor) -> Tensor:
    """The Shapiro-Wilk W = (sum_i a_i x_(i))^2 / sum_i (x_i - mean)^2, per column.

    Args:
        x: samples, (N, M).

    Returns:
        W in [0, 1] per column (1 = perfectly normal), (M,).
    """
    n = x.shape[0]
    a = torch.tensor(_shapiro_wilk_coefficients_list(n), dtype=x.dtype, device=x.device)
    numerator = (a @ torch.sort(x, dim=0).values) ** 2
    denominator = ((x - x.mean(0)) ** 2).sum(0)
    return numerator / denominator


def _shapiro_wilk_columns(x):
    return x.shape[0] * (1 - shapiro_wilk_w(x))


def shapiro_wilk(x: Tensor) -> Tensor:
    """Shapiro-Wilk statistic N * (1 - W) (larger = less normal), appendix E.

    W uses Royston's approximation of the coefficients (Blom scores, corrected
    extreme coefficients), matching scipy.stats.shapiro's W. Unlike the other
    statistics it is location-scale invariant: it tests normality, not N(0, 1).
    N * (1 - W) grows only slowly (like log N) under the null. The paper finds
    it unstable as a training loss.

    Args:
        x: samples, (N,) or (N, M): one sample of N values per column.

    Returns:
        The statistic, () or (M,): one per column.
    """
    return _univariate(_shapiro_wilk_columns, x, min_samples=3)


# --------------------------------------------------------------------------
# Moment statistics
# --------------------------------------------------------------------------


def _jarque_bera_columns(x, total=_sum_over_samples, n=None):
    n = x.shape[0] if n is None else n
    mean = total(x) / n  # (M,)
    centred = x - mean
    variance = total(centred**2) / n
    skewness = total(centred**3) / n / variance**1.5
    kurtosis = total(centred**4) / n / variance**2
    mean_term = n * mean**2  # ~ chi2(1): mean ~ N(0, 1/N)
    variance_term = n * (variance - 1) ** 2 / 2  # ~ chi2(1): var(s^2) ~ 2/N
    jarque_bera_term = n / 6 * (skewness**2 + (kurtosis - 3) ** 2 / 4)  # ~ chi2(2)
    return mean_term + variance_term + jarque_bera_term


def jarque_bera(x: Tensor) -> Tensor:
    """The paper's extended Jarque-Bera statistic against N(0, 1):

    EJB = N mean^2 + N (var - 1)^2 / 2 + N/6 (skew^2 + (kurt - 3)^2 / 4),

    the classical Jarque-Bera (skewness, kurtosis) plus the same z^2 terms for
    the first two moments (population mean and variance, compared with the
    null's 0 and 1). Asymptotically chi2(4) under N(0, 1).

    Args:
        x: samples, (N,) or (N, M): one sample of N values per column.

    Returns:
        The statistic, () or (M,): one per column.
    """
    return _univariate(_jarque_bera_columns, x)


def _moments_columns(x, k=4, total=_sum_over_samples, n=None):
    n = x.shape[0] if n is None else n
    statistic = 0.0
    hermite_previous, hermite = torch.ones_like(x), x  # He_0, He_1
    for j in range(1, k + 1):
        sample_mean = total(hermite) / n  # (M,)
        statistic = statistic + n * sample_mean**2 / math.factorial(j)
        # He_{j+1}(x) = x He_j(x) - j He_{j-1}(x)
        hermite_previous, hermite = hermite, x * hermite - j * hermite_previous
    return statistic


def moments(x: Tensor, *, k: int = 4) -> Tensor:
    """Moment matching against N(0, 1) up to order k:

    sum_{j=1..k} N mean_i(He_j(x_i))^2 / j!,

    He_j the probabilists' Hermite polynomials (He_1 = x, He_2 = x^2 - 1,
    He_3 = x^3 - 3x, He_4 = x^4 - 6x^2 + 3). Under N(0, 1), E[He_j] = 0 and
    Var[He_j] = j!, and the He_j are uncorrelated, so each term is an
    asymptotically independent chi2(1) and the sum a chi2(k) (mean k whatever
    N). Matching the Hermite moments up to order k is matching the raw
    moments up to order k; the orthogonal basis keeps the terms from
    drowning each other (raw-moment z-scores are strongly correlated).
    k = 2 is VICReg-like: mean 0 and second moment 1.

    Args:
        x: samples, (N,) or (N, M): one sample of N values per column.
        k: the highest moment matched.

    Returns:
        The statistic, () or (M,): one per column.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return _univariate(lambda c: _moments_columns(c, k=k), x)


# --------------------------------------------------------------------------
# Multivariate (appendix F)
# --------------------------------------------------------------------------


def bhep(X: Tensor, *, beta: float = 0.1) -> Tensor:
    """Baringhaus-Henze-Epps-Pulley statistic against N(0, I_D).

    N * integral |ecf(t) - exp(-|t|^2/2)|^2 phi_beta(t) dt with phi_beta the
    N(0, beta^2 I) density, in closed form:

      (1/N) sum_{j,k} exp(-beta^2 |X_j - X_k|^2 / 2)
      - 2 (1 + beta^2)^(-D/2) sum_j exp(-beta^2 |X_j|^2 / (2 (1 + beta^2)))
      + N (1 + 2 beta^2)^(-D/2).

    X is NOT standardised (the classical test standardises by the sample mean
    and covariance): like the univariate statistics it tests N(0, I) itself.

    Args:
        X: samples, (N, D).
        beta: the bandwidth of the weight phi_beta.

    Returns:
        The statistic, a scalar tensor.
    """
    check_samples(X, name="X", ndims=(2,), expected="(N, D)")
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a positive finite number, got {beta!r}")
    n, d = X.shape
    b2 = float(beta) ** 2
    squared_norms = (X**2).sum(1)  # (N,)
    squared_distances = (squared_norms[:, None] + squared_norms[None, :] - 2 * X @ X.T).clamp_min(0)
    pair_term = torch.exp(-b2 / 2 * squared_distances).sum() / n
    cross_term = 2 * (1 + b2) ** (-d / 2) * torch.exp(-b2 * squared_norms / (2 * (1 + b2))).sum()
    constant_term = n * (1 + 2 * b2) ** (-d / 2)
    return pair_term - cross_term + constant_term


def henze_zirkler_beta(*, n: int, d: int) -> float:
    """Henze-Zirkler's bandwidth beta = (1/sqrt 2) ((2D + 1) N / 4)^(1/(D + 4)).

    Args:
        n: the number of samples N.
        d: the dimension D.

    Returns:
        beta.
    """
    return ((2 * d + 1) * n / 4) ** (1 / (d + 4)) / math.sqrt(2)


def henze_zirkler(X: Tensor) -> Tensor:
    """Henze-Zirkler statistic: BHEP with its data-driven beta (see
    ``henze_zirkler_beta``), against N(0, I) without standardisation.

    Args:
        X: samples, (N, D).

    Returns:
        The statistic, a scalar tensor.
    """
    check_samples(X, name="X", ndims=(2,), expected="(N, D)")
    return bhep(X, beta=henze_zirkler_beta(n=X.shape[0], d=X.shape[1]))
