"""Figures 6, 16 and 7: gradient descent on a normality statistic, applied to the samples.

The samples themselves are the parameters: no encoder, just N points in R^D moved by
Adam to minimise a statistic of their distribution against N(0, I).

- Figures 6 and 16: N = 100 points of a D-dimensional standard normal whose first two
  coordinates are replaced by the "X" shape of figure 5 (standard normal marginals,
  identity covariance, but all the mass on the two diagonals). Each step draws M fresh
  random unit directions and minimises the statistic of the projections averaged over
  directions (SIGReg, definition 2 of the paper), or a multivariate statistic on all D
  coordinates. The paper's claim: Epps-Pulley unfolds the X into a Gaussian blob even
  at D = 1024 with M = 10, although random directions in R^1024 barely see the first
  two coordinates.
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
from lejepa.synthetic.illustration import sample_x_shape

log = logging.getLogger(__name__)

UNIVARIATE_STATISTICS = ("epps_pulley", "cramer_von_mises", "anderson_darling", "watson", "jarque_bera", "moments")
MULTIVARIATE_STATISTICS = ("bhep", "henze_zirkler")
STATISTICS = UNIVARIATE_STATISTICS + MULTIVARIATE_STATISTICS

STATISTIC_LABELS = {
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
        if name == "lr":
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{figure}: setting 'lr' must be a positive number, got {value!r}")
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


def x_shape_in_gaussian(*, num_samples: int, dim: int, seed: int) -> torch.Tensor:
    """N(0, I_D) samples whose first two coordinates are the "X" shape, (N, D) float32."""
    if dim < 2:
        raise ValueError(f"the X shape needs dim >= 2, got {dim}")
    generator = torch.Generator().manual_seed(seed)
    samples = torch.randn(num_samples, dim, generator=generator)
    samples[:, :2] = torch.from_numpy(sample_x_shape(num_samples, seed=seed)).float()
    return samples


def make_objective(statistic: str, *, num_directions: int):
    """objective(samples (N, D), step) -> scalar to minimise.

    Univariate tests: SIGReg with ``num_directions`` random directions redrawn at every
    step. Multivariate tests (BHEP, Henze-Zirkler): the statistic of all D coordinates.
    """
    if statistic == "bhep":
        return lambda samples, step: stats.bhep(samples)
    if statistic == "henze_zirkler":
        return lambda samples, step: stats.henze_zirkler(samples)
    sigreg = SIGReg(num_slices=num_directions, test=statistic)
    return lambda samples, step: sigreg(samples, step=step)


def optimise_samples(initial: torch.Tensor, objective, *, steps: int, lr: float, step_of=lambda i: i) -> torch.Tensor:
    """Minimise objective(samples, step) over the samples with Adam; returns the final samples.

    ``step_of(i)`` is the step number handed to the objective at iteration i (it seeds
    SIGReg's directions: the identity redraws them every iteration, a constant fixes them).
    """
    samples = initial.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([samples], lr=lr)
    for iteration in range(steps):
        loss = objective(samples, step_of(iteration))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"objective became {loss.item()} at iteration {iteration}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return samples.detach()


def _first_two_coordinates(samples: torch.Tensor, **columns) -> pd.DataFrame:
    """Long-form rows (one per sample) with x1, x2 and the given constant columns."""
    x1, x2 = samples[:, 0].double().numpy(), samples[:, 1].double().numpy()
    return pd.DataFrame({**columns, "sample": np.arange(len(x1)), "x1": x1, "x2": x2})


def _before_and_after(
    *, statistics, num_samples, dim, num_directions, steps, lr, seed, extra_columns, multivariate_results=None
) -> list:
    """Long-form frames of the X before and after optimising on each statistic.

    ``multivariate_results`` (a dict) caches the multivariate runs, which do not depend
    on the number of directions, across calls with the same dim.
    """
    multivariate_results = {} if multivariate_results is None else multivariate_results
    initial = x_shape_in_gaussian(num_samples=num_samples, dim=dim, seed=seed)
    frames = []
    for statistic in statistics:
        if statistic in MULTIVARIATE_STATISTICS and (statistic, dim) in multivariate_results:
            final = multivariate_results[(statistic, dim)]
        else:
            objective = make_objective(statistic, num_directions=num_directions)
            final = optimise_samples(initial, objective, steps=steps, lr=lr)
            if statistic in MULTIVARIATE_STATISTICS:
                multivariate_results[(statistic, dim)] = final
        log.info("D=%d M=%d: optimised on %s", dim, num_directions, statistic)
        for stage, samples in (("before", initial), ("after", final)):
            frames.append(_first_two_coordinates(samples, **extra_columns, statistic=statistic, stage=stage))
    return frames


def _defaults(function) -> dict:
    """Keyword defaults of ``function`` (the paper's settings)."""
    return {name: p.default for name, p in inspect.signature(function).parameters.items()}


def _scatter_panel(ax, group: pd.DataFrame, *, color: str) -> None:
    for radius in (1.0, 2.0):  # contours of N(0, I) holding 39% and 86% of the mass
        ax.add_patch(_circle(radius))
    ax.scatter(group["x1"], group["x2"], s=5, color=color, linewidths=0, alpha=0.85)
    ax.set_xlim(-4, 4)
    ax.set_ylim(-4, 4)
    ax.set_aspect("equal")
    ax.set_xticks([-3, 0, 3])
    ax.set_yticks([-3, 0, 3])


def _circle(radius: float):
    from matplotlib.patches import Circle

    return Circle((0, 0), radius, fill=False, color="0.6", linewidth=0.6, linestyle="--")


def _draw_rows(data: pd.DataFrame, rows: list[tuple[str, pd.DataFrame]]):
    """One row of panels per (label, data) pair: the X before, then each statistic after."""
    import matplotlib.pyplot as plt

    use_paper_style()
    statistics = list(dict.fromkeys(data["statistic"]))
    columns = 1 + len(statistics)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.35 * columns, 1.55 * len(rows) + 0.3), squeeze=False)
    for row, (row_label, frame) in enumerate(rows):
        before = frame[(frame["stage"] == "before") & (frame["statistic"] == statistics[0])]
        _scatter_panel(axes[row, 0], before, color="black")
        axes[row, 0].set_ylabel(f"{row_label}\n$x_2$" if row_label else "$x_2$")
        for column, statistic in enumerate(statistics, start=1):
            after = frame[(frame["stage"] == "after") & (frame["statistic"] == statistic)]
            _scatter_panel(axes[row, column], after, color="tab:red" if statistic == "epps_pulley" else "tab:blue")
            axes[row, column].set_yticklabels([])
            if np.allclose(after[["x1", "x2"]].to_numpy(), before[["x1", "x2"]].to_numpy()):
                axes[row, column].text(0, -3.7, "samples did not move", ha="center", fontsize=6)
        if row == 0:
            axes[row, 0].set_title("before (X shape)")
            for column, statistic in enumerate(statistics, start=1):
                axes[row, column].set_title(STATISTIC_LABELS.get(statistic, statistic))
    for ax in axes[-1]:
        ax.set_xlabel("$x_1$")
    for ax in axes[:-1].ravel():
        ax.set_xticklabels([])
    fig.subplots_adjust(wspace=0.08, hspace=0.12)
    return fig


# ----------------------------------------------------------------------------------------
# Figure 6
# ----------------------------------------------------------------------------------------


def compute_fig6(
    *,
    num_samples: int = 100,
    dim: int = 1024,
    num_directions: int = 10,
    statistics: tuple[str, ...] = STATISTICS,
    steps: int = 1000,
    lr: float = 0.03,
    seed: int = 0,
) -> pd.DataFrame:
    """First two coordinates before and after optimising the samples on each statistic.

    Columns: ``statistic, stage, sample, x1, x2`` (stage "before" or "after"; the
    "before" rows repeat the same initial X for every statistic).
    """
    _check_settings("fig6", num_samples=num_samples, dim=dim, num_directions=num_directions, steps=steps, lr=lr)
    statistics = _check_statistics("fig6", statistics)
    frames = _before_and_after(
        statistics=statistics,
        num_samples=num_samples,
        dim=dim,
        num_directions=num_directions,
        steps=steps,
        lr=lr,
        seed=seed,
        extra_columns={},
    )
    return pd.concat(frames, ignore_index=True)[["statistic", "stage", "sample", "x1", "x2"]]


def draw_fig6(data: pd.DataFrame, **settings):
    settings = {**_defaults(compute_fig6), **settings}
    fig = _draw_rows(data, [("", data)])
    fig.suptitle(
        f"N = {settings['num_samples']} samples in D = {settings['dim']}, "
        f"M = {settings['num_directions']} random directions per step, "
        f"{settings['steps']} Adam steps (lr {settings['lr']:g})",
        y=1.08,
    )
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
    steps: int = 1000,
    lr: float = 0.03,
    seed: int = 0,
) -> pd.DataFrame:
    """Figure 6 for each (dim, num_directions) case. Columns: ``D, M, statistic, stage, sample, x1, x2``."""
    _check_settings("fig16", num_samples=num_samples, steps=steps, lr=lr)
    statistics = _check_statistics("fig16", statistics)
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
            seed=seed,
            extra_columns={"D": case["dim"], "M": case["num_directions"]},
            multivariate_results=multivariate_results,
        )
    return pd.concat(frames, ignore_index=True)[["D", "M", "statistic", "stage", "sample", "x1", "x2"]]


def draw_fig16(data: pd.DataFrame, **settings):
    settings = {**_defaults(compute_fig16), **settings}
    rows = [(f"D = {dim}, M = {m}", frame) for (dim, m), frame in data.groupby(["D", "M"], sort=False)]
    fig = _draw_rows(data, rows)
    fig.suptitle(
        f"N = {settings['num_samples']} samples, {settings['steps']} Adam steps (lr {settings['lr']:g}), "
        "M random directions per step",
        y=0.99,
    )
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
    num_samples: int = 128,
    dim: int = 512,
    init_scale: float = 0.2,
    resampled_directions: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256),
    fixed_directions: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
    steps: int = 500,
    lr: float = 0.02,
    evaluation_directions: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Final expected Epps-Pulley statistic vs M, directions resampled every step or fixed.

    The samples start collapsed, ``init_scale * N(0, I_D)``, and are optimised with SIGReg
    (Epps-Pulley) on M directions. Columns: ``directions, M, D, N, final_statistic,
    train_statistic, initial_statistic, null_mean`` where ``final_statistic`` averages
    over ``evaluation_directions`` fresh directions, ``train_statistic`` is the last
    training loss, and ``null_mean`` is the statistic's expectation for a true N(0, 1)
    sample.
    """
    _check_settings(
        "fig7", num_samples=num_samples, dim=dim, steps=steps, lr=lr, evaluation_directions=evaluation_directions
    )
    if not (isinstance(init_scale, (int, float)) and init_scale > 0):
        raise ValueError(f"fig7: setting 'init_scale' must be a positive number, got {init_scale!r}")
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
            log.info("fig7 %s M=%d: %.3f (train %.3f)", mode, m, final_statistic, train_statistic)
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
    return pd.DataFrame(rows)


def draw_fig7(data: pd.DataFrame, **settings):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter

    use_paper_style()
    fig, ax = plt.subplots(figsize=(3.8, 2.8))
    colors = {"resampled": "tab:green", "fixed": "tab:blue"}
    labels = {"resampled": "resampled every step", "fixed": "fixed once"}
    for mode, group in data.groupby("directions", sort=False):
        group = group.sort_values("M")
        ax.plot(group["M"], group["final_statistic"], marker="o", markersize=3.5, color=colors[mode], label=labels[mode])
    resampled_16 = data[(data["directions"] == "resampled") & (data["M"] == 16)]["final_statistic"]
    if len(resampled_16):
        ax.axhline(resampled_16.iloc[0], color="tab:green", linestyle="--", linewidth=0.8, alpha=0.7, label="resampled, M = 16")
    ax.axhline(data["null_mean"].iloc[0], color="0.5", linestyle=":", linewidth=1, label="mean for a true N(0, 1) sample")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator([4**k for k in range(8) if 4**k <= data["M"].max()]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.set_xlabel("number of directions per step $M$")
    ax.set_ylabel("final Epps-Pulley statistic\n(mean over fresh directions)")
    ax.set_title(f"N = {data['N'].iloc[0]} samples in D = {data['D'].iloc[0]}")
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=7)
    return fig
