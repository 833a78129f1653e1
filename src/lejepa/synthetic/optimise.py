"""Figures 6, 16 and 7: gradient descent on a normality statistic, applied to the samples.

The samples themselves are the parameters: no encoder, just N points in R^D moved by
Adam to minimise a statistic of their distribution against N(0, I).

- Figures 6 and 16: N = 100 points of a D-dimensional standard normal whose first two
  coordinates are replaced by the "X" shape of figure 5 (standard normal marginals,
  identity covariance, but all the mass on the two diagonals), shifted by ``offset``
  (+1 in the official script). Each step draws M fresh random unit directions and
  minimises the statistic of the projections averaged over directions (SIGReg,
  definition 2 of the paper), or a multivariate statistic on all D coordinates. The
  paper's claim: Epps-Pulley unfolds the X into a Gaussian blob even at D = 1024 with
  M = 10, although random directions in R^1024 barely see the first two coordinates.
  VCReg (mean^2 + (std - 1)^2 per direction, the official script's negative control)
  matches only the first two moments, which the X already has (theorem 3): it removes
  the offset and leaves the X degenerate. Henze-Zirkler is computed in log space and
  optimised through a fixed rescaling (``henze_zirkler_log_terms``): in float32 its
  gradient underflows to exactly 0 at D = 1024.
- Figure 7: how many directions SIGReg needs. Points start from a collapsed embedding
  (a shrunken Gaussian) and are optimised with M directions either redrawn every step
  or drawn once and kept; at the end, the statistic is averaged over many fresh
  evaluation directions. The paper's claim: resampling with M = 16 ends lower than a
  fixed set of thousands.
"""

from __future__ import annotations

import inspect
import logging
import math

import numpy as np
import pandas as pd
import torch

from lejepa import SIGReg, stats
from lejepa.plots import use_paper_style
from lejepa.sigreg import TESTS, random_directions
from lejepa.synthetic.illustration import sample_x_shape, vcreg

log = logging.getLogger(__name__)

UNIVARIATE_STATISTICS = (
    "vcreg", "epps_pulley", "cramer_von_mises", "anderson_darling", "watson", "jarque_bera", "moments"
)  # fmt: skip
MULTIVARIATE_STATISTICS = ("bhep", "henze_zirkler")
# "<statistic>_gd": the same statistic minimised by plain gradient descent (lr gd_lr) instead of
# Adam. For VCReg the plain gradient step is the same affine map for every sample, so it can
# move, stretch and shear the X but never unfold it; Adam's per-coordinate normalisation is
# not such a map.
PLAIN_GRADIENT_DESCENT = {"vcreg_gd": "vcreg"}
STATISTICS = UNIVARIATE_STATISTICS + MULTIVARIATE_STATISTICS + tuple(PLAIN_GRADIENT_DESCENT)

STATISTIC_LABELS = {
    "vcreg": "VCReg\n(mean, std)",
    "vcreg_gd": "VCReg, plain\ngradient descent",
    "epps_pulley": "Epps-Pulley\n(SIGReg)",
    "cramer_von_mises": "Cramér-\nvon Mises",
    "anderson_darling": "Anderson-\nDarling",
    "watson": "Watson",
    "jarque_bera": "extended\nJarque-Bera",
    "moments": "moments\n(k = 4)",
    "shapiro_wilk": "Shapiro-\nWilk",
    "bhep": "BHEP\n(all D coords.)",
    "henze_zirkler": "Henze-Zirkler\n(all D coords.)",
}

# Evaluation directions of figure 7 come from step numbers far away from the training
# steps, so they are never among the directions used for training.
EVALUATION_STEP_OFFSET = 10**9


# ----------------------------------------------------------------------------------------
# Shared pieces
# ----------------------------------------------------------------------------------------


def _check_settings(figure: str, **values) -> None:
    for name, value in values.items():
        if name in ("lr", "gd_lr"):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{figure}: setting {name!r} must be a positive number, got {value!r}")
        elif not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{figure}: setting {name!r} must be an integer >= 1, got {value!r}")


def _check_statistics(figure: str, statistics) -> list[str]:
    unknown = [name for name in statistics if name not in STATISTICS and name not in TESTS]
    if unknown or not statistics:
        raise ValueError(
            f"{figure}: setting 'statistics' has unknown name(s) {unknown} (or is empty); "
            f"expected names from {sorted(set(STATISTICS) | set(TESTS))}"
        )
    return list(statistics)


def x_shape_in_gaussian(*, num_samples: int, dim: int, seed: int, offset: float = 0.0) -> torch.Tensor:
    """N(0, I_D) samples whose first two coordinates are the "X" shape plus ``offset``, (N, D) float32."""
    if dim < 2:
        raise ValueError(f"the X shape needs dim >= 2, got {dim}")
    generator = torch.Generator().manual_seed(seed)
    samples = torch.randn(num_samples, dim, generator=generator)
    samples[:, :2] = torch.from_numpy(sample_x_shape(num_samples, seed=seed)).float() + float(offset)
    return samples


def henze_zirkler_log_terms(X: torch.Tensor) -> dict:
    """Henze-Zirkler's statistic as signed exponentials, in float64, without underflow.

    HZ(X) = BHEP with beta = henze_zirkler_beta(N, D) (``lejepa.stats.henze_zirkler``):
        (1/N) sum_{j != k} exp(pair_jk) + 1 - sum_j exp(cross_j) + exp(constant)
    with pair_jk = -beta^2 |X_j - X_k|^2 / 2,
         cross_j = log 2 - (D/2) log(1 + beta^2) - beta^2 |X_j|^2 / (2 (1 + beta^2)),
         constant = log N - (D/2) log(1 + 2 beta^2).
    Returns {"pair": (N, N) log terms, diagonal set to -inf, "cross": (N,), "constant": float,
    "beta": float}. At D = 1024, N = 100 these logs are about -500, -380 and -360: every
    term but the diagonal underflows in float32, and so does the whole gradient."""
    X = X.double()
    n, d = X.shape
    beta2 = stats.henze_zirkler_beta(n=n, d=d) ** 2
    squared_norms = (X**2).sum(1)
    squared_distances = (squared_norms[:, None] + squared_norms[None, :] - 2 * X @ X.T).clamp_min(0)
    pair = -beta2 / 2 * squared_distances
    pair = pair.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
    cross = math.log(2.0) - d / 2 * math.log1p(beta2) - beta2 * squared_norms / (2 * (1 + beta2))
    constant = math.log(n) - d / 2 * math.log1p(2 * beta2)
    return {"pair": pair, "cross": cross, "constant": constant, "beta": math.sqrt(beta2)}


def henze_zirkler_stable(X: torch.Tensor) -> torch.Tensor:
    """Henze-Zirkler's statistic in float64 from ``henze_zirkler_log_terms`` -> () float64."""
    terms = henze_zirkler_log_terms(X)
    n = X.shape[0]
    return torch.exp(terms["pair"]).sum() / n + 1.0 - torch.exp(terms["cross"]).sum() + math.exp(terms["constant"])


def henze_zirkler_log_scale(X: torch.Tensor) -> float:
    """The largest log term of HZ(X) that depends on X (pair or cross): log of the size of its gradient."""
    with torch.no_grad():
        terms = henze_zirkler_log_terms(X)
        return float(torch.maximum(terms["pair"].max(), terms["cross"].max()))


def scaled_henze_zirkler(X: torch.Tensor, *, log_scale: float) -> torch.Tensor:
    """exp(-log_scale) * (HZ(X) - its terms that do not depend on X), in float64.

    Same gradient direction as HZ, magnified by exp(-log_scale): with a fixed log_scale
    (that of the initial samples), Adam on this is Adam on HZ itself with its epsilon
    shrunk by exp(log_scale), the only part of Adam not invariant to a gradient's scale."""
    terms = henze_zirkler_log_terms(X)
    n = X.shape[0]
    return torch.exp(terms["pair"] - log_scale).sum() / n - torch.exp(terms["cross"] - log_scale).sum()


def sliced(statistic_of_columns, *, num_directions: int):
    """objective(samples, step): mean over M random directions of step of a per-column statistic."""

    def objective(samples, step):
        directions = random_directions(dim=samples.shape[1], num_slices=num_directions, step=step)
        return statistic_of_columns(samples @ directions.to(samples.dtype)).mean()

    return objective


def make_objective(statistic: str, *, num_directions: int, initial: torch.Tensor | None = None):
    """objective(samples (N, D), step) -> scalar to minimise.

    Univariate tests: SIGReg with ``num_directions`` random directions redrawn at every
    step (VCReg on the same directions). Multivariate tests (BHEP, Henze-Zirkler): the
    statistic of all D coordinates; Henze-Zirkler as ``scaled_henze_zirkler`` with the
    log scale of ``initial`` (float64 samples expected).
    """
    if statistic == "bhep":
        return lambda samples, step: stats.bhep(samples)
    if statistic == "henze_zirkler":
        if initial is None:
            raise ValueError("the henze_zirkler objective needs the initial samples (its fixed log scale)")
        log_scale = henze_zirkler_log_scale(initial)
        return lambda samples, step: scaled_henze_zirkler(samples, log_scale=log_scale)
    if statistic == "vcreg":
        return sliced(vcreg, num_directions=num_directions)
    sigreg = SIGReg(num_slices=num_directions, test=statistic)
    return lambda samples, step: sigreg(samples, step=step)


def log10_initial_gradient(statistic: str, initial: torch.Tensor, *, num_directions: int) -> float:
    """log10 of the largest |d statistic / d sample| at the initial samples, in float64
    (Henze-Zirkler through its rescaled form, so the value is exact where float32 gives 0)."""
    samples = initial.double().clone().requires_grad_(True)
    if statistic == "henze_zirkler":
        log_scale = henze_zirkler_log_scale(samples)
        scaled_henze_zirkler(samples, log_scale=log_scale).backward()
        return float(torch.log10(samples.grad.abs().max())) + log_scale / math.log(10.0)
    make_objective(statistic, num_directions=num_directions)(samples, 0).backward()
    return float(torch.log10(samples.grad.abs().max()))


def optimise_samples(
    initial: torch.Tensor, objective, *, steps: int, lr: float, step_of=lambda i: i, optimizer: str = "adam"
) -> torch.Tensor:
    """Minimise objective(samples, step) over the samples with Adam (or plain gradient
    descent, ``optimizer="sgd"``); returns the final samples.

    ``step_of(i)`` is the step number handed to the objective at iteration i (it seeds
    SIGReg's directions: the identity redraws them every iteration, a constant fixes them).
    """
    samples = initial.clone().requires_grad_(True)
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    optimizer = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)([samples], lr=lr)
    for iteration in range(steps):
        loss = objective(samples, step_of(iteration))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"objective became {loss.item()} at iteration {iteration}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return samples.detach()


def _first_coordinates(samples: torch.Tensor, **columns) -> pd.DataFrame:
    """Long-form rows (one per sample) with x1..x4 (NaN beyond D) and the given constant columns."""
    values = samples[:, :4].double().numpy()
    coordinates = {f"x{i + 1}": values[:, i] if i < values.shape[1] else np.nan for i in range(4)}
    return pd.DataFrame({**columns, "sample": np.arange(len(values)), **coordinates})


def _before_and_after(
    *, statistics, num_samples, dim, num_directions, steps, lr, gd_lr, seed, offset, extra_columns,
    multivariate_results=None,
) -> list:  # fmt: skip
    """Long-form frames of the X before and after optimising on each statistic.

    ``multivariate_results`` (a dict) caches the multivariate runs, which do not depend
    on the number of directions, across calls with the same dim. Henze-Zirkler runs in
    float64 (see ``scaled_henze_zirkler``), every other statistic in float32.
    """
    multivariate_results = {} if multivariate_results is None else multivariate_results
    initial = x_shape_in_gaussian(num_samples=num_samples, dim=dim, seed=seed, offset=offset)
    frames = []
    for statistic in statistics:
        if statistic in MULTIVARIATE_STATISTICS and (statistic, dim) in multivariate_results:
            final, gradient = multivariate_results[(statistic, dim)]
        else:
            base = PLAIN_GRADIENT_DESCENT.get(statistic, statistic)
            gradient = log10_initial_gradient(base, initial, num_directions=num_directions)
            start = initial.double() if statistic == "henze_zirkler" else initial
            objective = make_objective(base, num_directions=num_directions, initial=start)
            if statistic in PLAIN_GRADIENT_DESCENT:
                final = optimise_samples(start, objective, steps=steps, lr=gd_lr, optimizer="sgd").float()
            else:
                final = optimise_samples(start, objective, steps=steps, lr=lr).float()
            if statistic in MULTIVARIATE_STATISTICS:
                multivariate_results[(statistic, dim)] = (final, gradient)
        log.info("D=%d M=%d: optimised on %s (initial gradient 1e%.1f)", dim, num_directions, statistic, gradient)
        for stage, samples in (("before", initial), ("after", final)):
            frames.append(
                _first_coordinates(
                    samples, **extra_columns, statistic=statistic, stage=stage, log10_initial_gradient=gradient
                )
            )
    return frames


def _defaults(function) -> dict:
    """Keyword defaults of ``function`` (the paper's settings)."""
    return {name: p.default for name, p in inspect.signature(function).parameters.items()}


# Mean distance from a point of N(0, I_2) to the nearest of two perpendicular lines through
# its mean: E min(|a|, |b|) for a, b independent N(0, 1), = integral of (2 (1 - Phi(t)))^2.
ARM_DISTANCE_GAUSSIAN = 2.0 * (math.sqrt(2.0) - 1.0) / math.sqrt(math.pi)


def x_arm_distance(x1, x2) -> float:
    """Mean distance of the points (x1, x2), standardised, to the nearer arm of an X.

    The points are centred on their mean and divided by their RMS spread per coordinate,
    sqrt((var x1 + var x2) / 2), so the number measures shape, not scale; the arms are
    the lines at 45 and 135 degrees through the origin. Exactly 0 for an X around its
    true centre, about 0.05-0.1 for an X of 100 points (its sample mean is off the
    centre), and ``ARM_DISTANCE_GAUSSIAN`` (0.467) in expectation for N(0, I_2) samples."""
    x1 = np.asarray(x1, dtype=float)
    x2 = np.asarray(x2, dtype=float)
    x1, x2 = x1 - x1.mean(), x2 - x2.mean()
    spread = math.sqrt((np.mean(x1**2) + np.mean(x2**2)) / 2)
    return float(np.mean(np.minimum(np.abs(x1 - x2), np.abs(x1 + x2))) / math.sqrt(2.0) / spread)


def arm_distances(data: pd.DataFrame) -> pd.DataFrame:
    """``x_arm_distance`` of dims 1-2 per (case columns, statistic, stage) of figure 6 or 16's data.

    Also carries ``log10_initial_gradient``. One row per group, in the data's order."""
    keys = [column for column in ("D", "M") if column in data.columns] + ["statistic", "stage"]
    rows = []
    for key, group in data.groupby(keys, sort=False):
        rows.append(
            dict(
                zip(keys, key),
                arm_distance=x_arm_distance(group["x1"], group["x2"]),
                log10_initial_gradient=float(group["log10_initial_gradient"].iloc[0]),
            )
        )
    return pd.DataFrame(rows)


def summarise_fig6(data: pd.DataFrame) -> dict[str, str]:
    """The numbers the captions and README quote for figures 6 and 16, formatted as they
    appear there, recomputed from the data alone (``tests/test_synthetic_captions.py``)."""
    distances = arm_distances(data)
    before = distances[distances["stage"] == "before"]["arm_distance"]
    after = distances[distances["stage"] == "after"].set_index("statistic")
    summary = {
        "arm distance before": f"{before.max():.2f}",
        "arm distance gaussian": f"{ARM_DISTANCE_GAUSSIAN:.2f}",
    }
    for statistic, rows in after.groupby(level=0, sort=False):
        low, high = rows["arm_distance"].min(), rows["arm_distance"].max()
        same = f"{low:.2f}" == f"{high:.2f}"
        summary[f"arm distance {statistic}"] = f"{low:.2f}" if same else f"{low:.2f}-{high:.2f}"
        gradient = rows["log10_initial_gradient"].max()
        summary[f"initial gradient {statistic}"] = f"1e{math.floor(gradient)}"
    return summary


def _scatter_panel(ax, x, y, *, color: str) -> None:
    for radius in (1.0, 2.0):  # contours of N(0, I) holding 39% and 86% of the mass
        ax.add_patch(_circle(radius))
    ax.scatter(x, y, s=5, color=color, linewidths=0, alpha=0.85)
    ax.set_xlim(-4, 4)
    ax.set_ylim(-4, 4)
    ax.set_aspect("equal")
    ax.set_xticks([-3, 0, 3])
    ax.set_yticks([-3, 0, 3])


def _circle(radius: float):
    from matplotlib.patches import Circle

    return Circle((0, 0), radius, fill=False, color="0.6", linewidth=0.6, linestyle="--")


STATISTIC_COLORS = {"epps_pulley": "tab:red", "vcreg": "0.35", "vcreg_gd": "0.35"}


def _draw_rows(data: pd.DataFrame, rows: list[tuple[str, pd.DataFrame]]):
    """Two rows of panels per (label, data) pair, dims 1-2 (the X) and dims 3-4 (Gaussian
    at the start): the samples before, then after optimising on each statistic. The arm
    distance (``x_arm_distance``) of dims 1-2 is printed in each top panel."""
    import matplotlib.pyplot as plt

    use_paper_style()
    statistics = list(dict.fromkeys(data["statistic"]))
    columns = 1 + len(statistics)
    pairs = [("x1", "x2")] + ([("x3", "x4")] if data["x3"].notna().any() else [])
    n_rows = len(rows) * len(pairs)
    fig, axes = plt.subplots(n_rows, columns, figsize=(1.35 * columns, 1.5 * n_rows + 0.3), squeeze=False)
    for block, (row_label, frame) in enumerate(rows):
        for offset, (first, second) in enumerate(pairs):
            row = block * len(pairs) + offset
            before = frame[(frame["stage"] == "before") & (frame["statistic"] == statistics[0])]
            _scatter_panel(axes[row, 0], before[first], before[second], color="black")
            label = f"${first[0]}_{first[1:]}$ vs ${second[0]}_{second[1:]}$"
            axes[row, 0].set_ylabel(f"{row_label}\n{label}" if row_label and offset == 0 else label)
            for column, statistic in enumerate(statistics, start=1):
                after = frame[(frame["stage"] == "after") & (frame["statistic"] == statistic)]
                ax = axes[row, column]
                _scatter_panel(ax, after[first], after[second], color=STATISTIC_COLORS.get(statistic, "tab:blue"))
                ax.set_yticklabels([])
                if np.allclose(after[[first, second]].to_numpy(), before[[first, second]].to_numpy()):
                    ax.text(0, -3.7, "samples did not move", ha="center", fontsize=6)
                if offset == 0:
                    ax.text(3.9, 3.9, f"{x_arm_distance(after[first], after[second]):.2f}", ha="right", va="top",
                            fontsize=6)  # fmt: skip
            if offset == 0:
                axes[row, 0].text(3.9, 3.9, f"{x_arm_distance(before[first], before[second]):.2f}", ha="right",
                                  va="top", fontsize=6)  # fmt: skip
    axes[0, 0].set_title("before (X shape)")
    for column, statistic in enumerate(statistics, start=1):
        axes[0, column].set_title(STATISTIC_LABELS.get(statistic, statistic))
    for ax in axes[-1]:
        ax.set_xlabel("first coordinate")
    for ax in axes[:-1].ravel():
        ax.set_xticklabels([])
    fig.subplots_adjust(wspace=0.08, hspace=0.12)
    return fig


FIG6_COLUMNS = ["statistic", "stage", "sample", "x1", "x2", "x3", "x4", "log10_initial_gradient"]


# ----------------------------------------------------------------------------------------
# Figure 6
# ----------------------------------------------------------------------------------------


def compute_fig6(
    *,
    num_samples: int = 100,
    dim: int = 1024,
    num_directions: int = 10,
    statistics: tuple[str, ...] = STATISTICS,
    offset: float = 1.0,
    steps: int = 1520,
    lr: float = 0.1,
    gd_lr: float = 300.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Coordinates 1-4 before and after optimising the samples on each statistic.

    The defaults follow the official figure script (X offset by +1, Adam lr 0.1, 1520
    steps). Columns: ``statistic, stage, sample, x1, x2, x3, x4, log10_initial_gradient``
    (stage "before" or "after"; the "before" rows repeat the same initial samples for
    every statistic; the last column is ``log10_initial_gradient``'s value).
    """
    _check_settings(
        "fig6", num_samples=num_samples, dim=dim, num_directions=num_directions, steps=steps, lr=lr, gd_lr=gd_lr
    )
    statistics = _check_statistics("fig6", statistics)
    _check_offset("fig6", offset)
    frames = _before_and_after(
        statistics=statistics,
        num_samples=num_samples,
        dim=dim,
        num_directions=num_directions,
        steps=steps,
        lr=lr,
        gd_lr=gd_lr,
        seed=seed,
        offset=offset,
        extra_columns={},
    )
    return pd.concat(frames, ignore_index=True)[FIG6_COLUMNS]


def _check_offset(figure: str, offset) -> None:
    if not (isinstance(offset, (int, float)) and math.isfinite(offset)):
        raise ValueError(f"{figure}: setting 'offset' must be a finite number, got {offset!r}")


def _suptitle(settings: dict, sizes: str) -> str:
    return (
        f"N = {settings['num_samples']} samples, {sizes}, {settings['steps']} Adam steps (lr {settings['lr']:g}; "
        f"plain gradient descent: lr {settings['gd_lr']:g}); X offset by {settings['offset']:+g}\n"
        f"number in a panel: mean distance of standardised dims 1-2 to an X's arms "
        f"(0 on the X, {ARM_DISTANCE_GAUSSIAN:.2f} expected for N(0, I))"
    )


def draw_fig6(data: pd.DataFrame, **settings):
    settings = {**_defaults(compute_fig6), **settings}
    fig = _draw_rows(data, [("", data)])
    sizes = f"D = {settings['dim']}, M = {settings['num_directions']} random directions per step"
    fig.suptitle(_suptitle(settings, sizes), y=1.02, fontsize=8)
    return fig


# ----------------------------------------------------------------------------------------
# Figure 16
# ----------------------------------------------------------------------------------------


def compute_fig16(
    *,
    num_samples: int = 100,
    cases: tuple[dict, ...] = (
        {"dim": 128, "num_directions": 10},
        {"dim": 128, "num_directions": 100},
        {"dim": 1024, "num_directions": 100},
    ),
    statistics: tuple[str, ...] = STATISTICS,
    offset: float = 1.0,
    steps: int = 1520,
    lr: float = 0.1,
    gd_lr: float = 300.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Figure 6 for each (dim, num_directions) case. Columns: ``D, M`` and figure 6's."""
    _check_settings("fig16", num_samples=num_samples, steps=steps, lr=lr, gd_lr=gd_lr)
    statistics = _check_statistics("fig16", statistics)
    _check_offset("fig16", offset)
    frames, multivariate_results = [], {}
    for case in cases:
        if set(case) != {"dim", "num_directions"}:
            raise ValueError(f"fig16: every entry of 'cases' needs exactly the keys dim, num_directions; got {case!r}")
        _check_settings("fig16", dim=case["dim"], num_directions=case["num_directions"])
        frames += _before_and_after(
            statistics=statistics,
            num_samples=num_samples,
            dim=case["dim"],
            num_directions=case["num_directions"],
            steps=steps,
            lr=lr,
            gd_lr=gd_lr,
            seed=seed,
            offset=offset,
            extra_columns={"D": case["dim"], "M": case["num_directions"]},
            multivariate_results=multivariate_results,
        )
    return pd.concat(frames, ignore_index=True)[["D", "M"] + FIG6_COLUMNS]


def draw_fig16(data: pd.DataFrame, **settings):
    settings = {**_defaults(compute_fig16), **settings}
    rows = [(f"D = {dim}, M = {m}", frame) for (dim, m), frame in data.groupby(["D", "M"], sort=False)]
    fig = _draw_rows(data, rows)
    fig.suptitle(_suptitle(settings, "M random directions per step"), y=0.995, fontsize=8)
    return fig


# ----------------------------------------------------------------------------------------
# Figure 7
# ----------------------------------------------------------------------------------------


def expected_directional_statistic(samples: torch.Tensor, *, num_directions: int, seed: int) -> float:
    """Epps-Pulley statistic averaged over ``num_directions`` fresh random unit directions."""
    directions = random_directions(
        dim=samples.shape[1], num_slices=num_directions, step=EVALUATION_STEP_OFFSET + seed
    ).to(samples.dtype)
    return float(stats.epps_pulley(samples @ directions).mean())


def compute_fig7(
    *,
    sizes: tuple[dict, ...] = ({"num_samples": 128, "dim": 512}, {"num_samples": 512, "dim": 128}),
    init_scale: float = 0.2,
    resampled_directions: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256),
    fixed_directions: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
    steps: int = 500,
    lr: float = 0.02,
    evaluation_directions: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Final expected Epps-Pulley statistic vs M, directions resampled every step or fixed,
    for each (N, D) in ``sizes``.

    The samples start collapsed, ``init_scale * N(0, I_D)``, and are optimised with SIGReg
    (Epps-Pulley) on M directions. Columns: ``directions, M, D, N, final_statistic,
    train_statistic, initial_statistic, null_mean`` where ``final_statistic`` averages
    over ``evaluation_directions`` fresh directions never used in training (held out),
    ``train_statistic`` is the last training loss, and ``null_mean`` is the statistic's
    expectation for a true N(0, 1) sample. With N < D the N points span only an
    N-dimensional subspace and can be arranged to beat ``null_mean`` on every direction
    (overfitting the test); with N > D they cannot, which is why ``sizes`` has both.
    """
    _check_settings("fig7", steps=steps, lr=lr, evaluation_directions=evaluation_directions)
    if not (isinstance(init_scale, (int, float)) and init_scale > 0):
        raise ValueError(f"fig7: setting 'init_scale' must be a positive number, got {init_scale!r}")
    if not sizes:
        raise ValueError("fig7: setting 'sizes' needs at least one {num_samples, dim}")
    rows = []
    for size in sizes:
        if set(size) != {"num_samples", "dim"}:
            raise ValueError(f"fig7: every entry of 'sizes' needs exactly the keys num_samples, dim; got {size!r}")
        rows += _fig7_rows(
            num_samples=size["num_samples"], dim=size["dim"], init_scale=init_scale,
            resampled_directions=resampled_directions, fixed_directions=fixed_directions, steps=steps, lr=lr,
            evaluation_directions=evaluation_directions, seed=seed,
        )  # fmt: skip
    return pd.DataFrame(rows)


def _fig7_rows(
    *, num_samples, dim, init_scale, resampled_directions, fixed_directions, steps, lr, evaluation_directions, seed
) -> list[dict]:
    _check_settings("fig7", num_samples=num_samples, dim=dim)
    generator = torch.Generator().manual_seed(seed)
    initial = init_scale * torch.randn(num_samples, dim, generator=generator)
    initial_statistic = expected_directional_statistic(initial, num_directions=evaluation_directions, seed=seed)
    # The fixed set is the directions of one step that no resampled run ever uses.
    fixed_step = EVALUATION_STEP_OFFSET // 2 + seed
    rows = []
    for mode, values in (("resampled", resampled_directions), ("fixed", fixed_directions)):
        for m in values:
            _check_settings("fig7", M=m)
            sigreg = SIGReg(num_slices=int(m), test="epps_pulley")
            objective = lambda samples, step: sigreg(samples, step=step)  # noqa: E731
            step_of = (lambda i: seed * steps + i) if mode == "resampled" else (lambda i: fixed_step)
            final = optimise_samples(initial, objective, steps=steps, lr=lr, step_of=step_of)
            with torch.no_grad():
                train_statistic = float(objective(final, step_of(steps - 1)))
            final_statistic = expected_directional_statistic(final, num_directions=evaluation_directions, seed=seed)
            log.info("fig7 N=%d D=%d %s M=%d: %.3f (train %.3f)", num_samples, dim, mode, m, final_statistic,
                     train_statistic)  # fmt: skip
            rows.append(
                dict(
                    directions=mode,
                    M=int(m),
                    D=dim,
                    N=num_samples,
                    final_statistic=final_statistic,
                    train_statistic=train_statistic,
                    initial_statistic=initial_statistic,
                    null_mean=stats.epps_pulley_null_mean(t_max=3.0),
                )
            )
    return rows


def summarise_fig7(data: pd.DataFrame) -> dict[str, str]:
    """The numbers figure 7's caption and the README quote, formatted as there, from the data alone.

    Per (N, D): the final statistic of resampled M = 16, the smallest fixed M that ends at
    or below it (or "none"), the fixed M = 4096 value, and the null mean."""
    summary = {"null mean": f"{data['null_mean'].iloc[0]:.2f}"}
    for (n, d), group in data.groupby(["N", "D"], sort=False):
        name = f"N={n} D={d}"
        final = group.set_index(["directions", "M"])["final_statistic"]
        resampled_16 = final.get(("resampled", 16))
        fixed = final.xs("fixed").sort_index()
        if resampled_16 is not None:
            summary[f"{name} resampled 16"] = f"{resampled_16:.2f}"
            beating = fixed[fixed <= resampled_16]
            summary[f"{name} fixed M matching resampled 16"] = str(int(beating.index[0])) if len(beating) else "none"
            worse = fixed[fixed > resampled_16]
            if len(worse):
                summary[f"{name} largest fixed M above resampled 16"] = str(int(worse.index[-1]))
                summary[f"{name} largest fixed above resampled 16"] = f"{worse.iloc[-1]:.2f}"
        summary[f"{name} fixed largest M"] = str(int(fixed.index[-1]))
        summary[f"{name} fixed largest"] = f"{fixed.iloc[-1]:.2f}"
        summary[f"{name} resampled best"] = f"{final.xs('resampled').min():.2f}"
    return summary


def draw_fig7(data: pd.DataFrame, **settings):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter

    use_paper_style()
    sizes = list(dict.fromkeys(zip(data["N"], data["D"])))
    fig, axes = plt.subplots(1, len(sizes), figsize=(3.8 * len(sizes), 3.0), squeeze=False, sharey=True)
    colors = {"resampled": "tab:green", "fixed": "tab:blue"}
    labels = {"resampled": "resampled every step", "fixed": "fixed once"}
    for ax, (n, d) in zip(axes[0], sizes):
        panel = data[(data["N"] == n) & (data["D"] == d)]
        for mode, group in panel.groupby("directions", sort=False):
            group = group.sort_values("M")
            ax.plot(group["M"], group["final_statistic"], marker="o", markersize=3.5, color=colors[mode],
                    label=labels[mode])  # fmt: skip
        resampled_16 = panel[(panel["directions"] == "resampled") & (panel["M"] == 16)]["final_statistic"]
        if len(resampled_16):
            ax.axhline(resampled_16.iloc[0], color="tab:green", linestyle="--", linewidth=0.8, alpha=0.7,
                       label="resampled, M = 16")  # fmt: skip
        ax.axhline(panel["null_mean"].iloc[0], color="0.5", linestyle=":", linewidth=1,
                   label="mean for a true N(0, 1) sample")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(FixedLocator([4**k for k in range(8) if 4**k <= panel["M"].max()]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.set_xlabel("number of directions per step $M$")
        regime = "N < D" if n < d else "N > D"
        ax.set_title(f"N = {n} samples in D = {d} ({regime})", fontsize=8)
    axes[0, 0].set_ylabel("final Epps-Pulley statistic\n(mean over held-out directions)")
    handles, legend_labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, legend_labels, frameon=False, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, fontsize=7)
    return fig
