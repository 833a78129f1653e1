"""Figures 2 and 5: SIGReg's idea on 2-D toy densities.

Figure 5 uses the "X" density: standard normal marginals and identity covariance, yet
clearly not Gaussian; only the directions along the arms of the X reveal it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import norm as stats_norm

from lejepa.plots import use_paper_style


def sample_x_shape(n: int, *, seed: int | None = None, generator: np.random.Generator | None = None) -> np.ndarray:
    """Draw ``n`` points of the "X" density, shape (n, 2).

    x1 ~ N(0, 1) and x2 = s * x1 with a random sign s = +-1, so both marginals are
    N(0, 1) and the covariance is the identity (E[x1 x2] = E[s] E[x1^2] = 0), while all
    the mass lies on the two diagonals: projecting onto (1, 1)/sqrt(2) or (1, -1)/sqrt(2)
    gives a half-degenerate (point mass at 0 plus N(0, 2)) distribution.
    """
    if n < 1:
        raise ValueError(f"sample_x_shape: n must be >= 1, got {n}")
    rng = generator if generator is not None else np.random.default_rng(seed)
    x1 = rng.standard_normal(n)
    sign = rng.choice(np.array([-1.0, 1.0]), size=n)
    return np.stack([x1, sign * x1], axis=1)


def vcreg(x: torch.Tensor) -> torch.Tensor:
    """VCReg per column: mean^2 + (std - 1)^2 (std unbiased), x (N,) or (N, M) -> () or (M,).

    The official figure scripts' negative control: it matches the first two moments
    only, so any distribution with mean 0 and variance 1 along a direction (the X along
    every direction among them) scores about 0 (theorem 3 of the paper)."""
    return x.mean(0) ** 2 + (x.std(0) - 1.0) ** 2


# ----------------------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------------------

STATISTIC_LABELS = {
    "vcreg": "VCReg (mean, std)",
    "epps_pulley": "Epps-Pulley",
    "cramer_von_mises": "Cramér-von Mises",
    "anderson_darling": "Anderson-Darling",
    "watson": "Watson",
    "jarque_bera": "extended Jarque-Bera",
    "moments": "moments (k = 4)",
    "shapiro_wilk": "Shapiro-Wilk",
}


def half_circle_directions(num_directions: int, *, first_direction_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``num_directions`` unit vectors (M, 2) evenly spaced on the half circle, and their angles in [0, 180)."""
    if int(num_directions) != num_directions or num_directions < 1:
        raise ValueError(f"setting 'num_directions' must be an integer >= 1, got {num_directions!r}")
    angles_deg = (first_direction_deg + 180.0 * np.arange(num_directions) / num_directions) % 180.0
    angles = np.deg2rad(angles_deg)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1), angles_deg


def directional_statistics(projections: np.ndarray, statistics) -> dict[str, np.ndarray]:
    """Each named ``lejepa.stats`` statistic of every column of ``projections`` (N, M) -> {name: (M,)}."""
    from lejepa import stats

    unknown = [name for name in statistics if name not in STATISTIC_LABELS]
    if unknown:
        raise ValueError(
            f"setting 'statistics': unknown statistic(s) {unknown}; expected names from {sorted(STATISTIC_LABELS)}"
        )
    columns = torch.as_tensor(projections, dtype=torch.float64)
    with torch.no_grad():
        return {name: (vcreg if name == "vcreg" else getattr(stats, name))(columns).numpy() for name in statistics}


def _density_on_grid(samples: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian kernel density estimate of 1-D ``samples`` at ``grid`` (fixed bandwidth, so spikes stay visible)."""
    return stats_norm.pdf((grid[:, None] - samples[None, :]) / bandwidth).mean(axis=1) / bandwidth


# ----------------------------------------------------------------------------------------
# Figure 2: SIGReg illustration (input data, embeddings, projected densities)
# ----------------------------------------------------------------------------------------


# Columns of the long-form data behind figures 2 and 5.
_COLUMNS = ["part", "direction", "angle_deg", "x1", "x2", "t", "density", "statistic", "value"]


def _projection_frames(projections, angles_deg, *, grid, bandwidth, statistics) -> list[pd.DataFrame]:
    """Per direction: the kernel density of the projection on ``grid`` and each statistic's value."""
    frames = [
        pd.DataFrame(
            dict(part="density", direction=index, angle_deg=angle, t=grid,
                 density=_density_on_grid(projections[:, index], grid, bandwidth))
        )
        for index, angle in enumerate(angles_deg)
    ]
    for name, values in directional_statistics(projections, statistics).items():
        frames.append(
            pd.DataFrame(
                dict(part="statistic", direction=np.arange(len(angles_deg)), angle_deg=angles_deg,
                     statistic=name, value=values)
            )
        )
    return frames


def sample_spiral(n: int, *, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    """Points (n, 2) near a 1-D manifold: a two-turn spiral with Gaussian noise."""
    turn = rng.uniform(1.5 * np.pi, 4.5 * np.pi, n)
    return np.stack([turn * np.cos(turn), turn * np.sin(turn)], axis=1) / (4.5 * np.pi) + noise * rng.standard_normal(
        (n, 2)
    )


def random_encoder(x: np.ndarray, *, hidden_width: int, rng: np.random.Generator) -> np.ndarray:
    """A fixed random 2 -> hidden_width -> 2 tanh network, output rescaled to total variance 2 (that of N(0, I_2))."""
    first = rng.standard_normal((2, hidden_width)) * 2.0
    bias = rng.standard_normal(hidden_width)
    second = rng.standard_normal((hidden_width, 2)) / np.sqrt(hidden_width)
    z = np.tanh(x @ first + bias) @ second
    z = z - z.mean(axis=0) + 0.3 * second.sum(axis=0)  # keep a small off-centre mean: not N(0, I) either
    return z * np.sqrt(2.0 / np.sum(z.var(axis=0)))


def compute_fig2(
    *,
    n_samples: int = 1000,
    num_directions: int = 13,
    hidden_width: int = 64,
    statistic: str = "epps_pulley",
    bandwidth: float = 0.2,
    seed: int = 0,
) -> pd.DataFrame:
    """Input points near a spiral, their embeddings z = f(x) by a random network, and the
    density of z projected on ``num_directions`` directions of the half circle.

    Long-form rows, by ``part``: ``input`` (x1, x2), ``embedding`` (x1, x2 = z1, z2),
    ``density`` (direction, angle_deg, t, density: kernel density of a^T z) and
    ``statistic`` (the named ``lejepa.stats`` statistic of a^T z against N(0, 1) per
    direction, in ``value``; SIGReg averages these).
    """
    if int(n_samples) != n_samples or n_samples < 8:
        raise ValueError(f"setting 'n_samples' must be an integer >= 8, got {n_samples!r}")
    if int(hidden_width) != hidden_width or hidden_width < 1:
        raise ValueError(f"setting 'hidden_width' must be an integer >= 1, got {hidden_width!r}")
    if bandwidth <= 0:
        raise ValueError(f"setting 'bandwidth' must be > 0, got {bandwidth!r}")
    rng = np.random.default_rng(seed)
    inputs = sample_spiral(int(n_samples), rng=rng)
    embeddings = random_encoder(inputs, hidden_width=int(hidden_width), rng=rng)
    directions, angles_deg = half_circle_directions(num_directions)
    projections = embeddings @ directions.T  # (N, M)
    grid = np.linspace(-4.0, 4.0, 321)

    frames = [
        pd.DataFrame(dict(part="input", x1=inputs[:, 0], x2=inputs[:, 1])),
        pd.DataFrame(dict(part="embedding", x1=embeddings[:, 0], x2=embeddings[:, 1])),
    ]
    frames += _projection_frames(projections, angles_deg, grid=grid, bandwidth=bandwidth, statistics=[statistic])
    return pd.DataFrame(pd.concat(frames, ignore_index=True), columns=_COLUMNS)


def draw_fig2(data: pd.DataFrame, **settings):
    import matplotlib.pyplot as plt

    use_paper_style()
    fig, (input_ax, embedding_ax, density_ax) = plt.subplots(
        1, 3, figsize=(7.2, 3.1), gridspec_kw=dict(width_ratios=[1, 1, 1.1], wspace=0.35)
    )
    densities = data[data["part"] == "density"]
    angles = sorted(densities["angle_deg"].unique())
    palette = dict(zip(angles, plt.cm.plasma(np.linspace(0.0, 0.85, len(angles)))))

    inputs = data[data["part"] == "input"]
    input_ax.scatter(inputs["x1"], inputs["x2"], s=2, color="0.3", alpha=0.6, linewidth=0)
    input_ax.set_aspect("equal")
    input_ax.set_title("input data $x \\sim p_x$\n(near a 1-D manifold)")
    input_ax.set_xlabel("$x_1$")
    input_ax.set_ylabel("$x_2$")

    embeddings = data[data["part"] == "embedding"]
    embedding_ax.scatter(embeddings["x1"], embeddings["x2"], s=2, color="0.3", alpha=0.6, linewidth=0)
    for angle in angles:
        direction = np.array([np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))])
        embedding_ax.annotate(
            "", xy=2.6 * direction, xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", color=palette[angle], lw=1.1)
        )
    embedding_ax.set_xlim(-3, 3)
    embedding_ax.set_ylim(-3, 3)
    embedding_ax.set_aspect("equal")
    embedding_ax.set_title(f"embeddings $z = f(x)$\nand {len(angles)} directions $a$")
    embedding_ax.set_xlabel("$z_1$")
    embedding_ax.set_ylabel("$z_2$")

    statistics = data[data["part"] == "statistic"].set_index("angle_deg")
    name = STATISTIC_LABELS[statistics["statistic"].iloc[0]]
    offset = 0.45
    for row, angle in enumerate(angles):
        curve = densities[densities["angle_deg"] == angle]
        base = row * offset
        in_front = len(angles) - row
        density_ax.fill_between(
            curve["t"],
            base,
            base + curve["density"],
            facecolor=palette[angle],
            edgecolor="white",
            lw=0.5,
            alpha=0.9,
            zorder=2 * in_front,
        )
        density_ax.plot(curve["t"], base + stats_norm.pdf(curve["t"]), color="k", lw=0.8, zorder=2 * in_front + 1)
        density_ax.text(4.1, base + 0.03, f"{statistics.loc[angle, 'value']:.1f}", fontsize=6.5, va="bottom")
    density_ax.text(
        4.1, len(angles) * offset + 0.05, f"{name}\n(mean {statistics['value'].mean():.1f})", fontsize=6.5, va="bottom"
    )
    density_ax.set_xlim(-4, 4)
    density_ax.set_yticks([])
    density_ax.spines["left"].set_visible(False)
    density_ax.set_xlabel(r"projection $a^\top z$")
    density_ax.set_title("densities of $a^\\top z$ (colour)\nvs N(0, 1) (black)")
    return fig


# ----------------------------------------------------------------------------------------
# Figure 5: the "X" density and the statistic along M directions of the half circle
# ----------------------------------------------------------------------------------------


def compute_fig5(
    *,
    n_samples: int = 1000,
    num_directions: int = 10,
    first_direction_deg: float = 45.0,
    statistics=(
        "vcreg",
        "epps_pulley",
        "cramer_von_mises",
        "anderson_darling",
        "watson",
        "jarque_bera",
        "moments",
        "shapiro_wilk",
    ),
    bandwidth: float = 0.15,
    seed: int = 0,
) -> pd.DataFrame:
    """Project ``n_samples`` points of the X density on ``num_directions`` directions of the half circle.

    The X's arms lie at 45 and 135 degrees; with ``first_direction_deg = 45`` two of the M
    directions are exactly the degenerate ones (half the projected mass at 0).
    Long-form rows, by ``part``:
      - ``sample``: the points (x1, x2);
      - ``density``: kernel density (fixed ``bandwidth``) of each direction's projection
        at t, with angle_deg and direction index;
      - ``statistic``: each goodness-of-fit statistic (``lejepa.stats``, against N(0, 1))
        per direction, in ``value``.
    """
    if int(n_samples) != n_samples or n_samples < 8:
        raise ValueError(f"setting 'n_samples' must be an integer >= 8, got {n_samples!r}")
    if bandwidth <= 0:
        raise ValueError(f"setting 'bandwidth' must be > 0, got {bandwidth!r}")
    points = sample_x_shape(int(n_samples), seed=seed)
    directions, angles_deg = half_circle_directions(num_directions, first_direction_deg=first_direction_deg)
    projections = points @ directions.T  # (N, M)
    grid = np.linspace(-4.0, 4.0, 321)

    frames = [pd.DataFrame(dict(part="sample", x1=points[:, 0], x2=points[:, 1]))]
    frames += _projection_frames(projections, angles_deg, grid=grid, bandwidth=bandwidth, statistics=statistics)
    return pd.DataFrame(pd.concat(frames, ignore_index=True), columns=_COLUMNS)


ARMS_DEG = (45.0, 135.0)


def summarise_fig5(data: pd.DataFrame) -> dict[str, str]:
    """The numbers figure 5's caption and the README quote, formatted as there, from the data alone.

    Per statistic: the direction where it peaks; Epps-Pulley on the two arms and its
    smallest value; VCReg's largest value over all directions and its max / min ratio."""
    values = data[data["part"] == "statistic"].pivot(index="angle_deg", columns="statistic", values="value")
    arms = values.loc[[angle for angle in values.index if min(abs(angle - arm) for arm in ARMS_DEG) < 1e-6]]
    peaks_on_arm = [name for name in values.columns if values[name].idxmax() in arms.index]
    summary = {
        "directions": str(len(values)),
        "statistics peaking on an arm": str(len(peaks_on_arm)),
        "statistics": str(len(values.columns)),
    }
    if "epps_pulley" in values:
        summary["epps_pulley arms"] = f"{arms['epps_pulley'].min():.0f}-{arms['epps_pulley'].max():.0f}"
        summary["epps_pulley least"] = f"{values['epps_pulley'].min():.1f}"
    if "vcreg" in values:
        summary["vcreg max"] = f"{values['vcreg'].max():.4f}"
        summary["vcreg max/min"] = f"{values['vcreg'].max() / values['vcreg'].min():.1f}"
        summary["vcreg peaks on an arm"] = "yes" if "vcreg" in peaks_on_arm else "no"
    return summary


def draw_fig5(data: pd.DataFrame, **settings):
    import matplotlib.pyplot as plt
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    use_paper_style()
    fig, (scatter_ax, density_ax, statistic_ax) = plt.subplots(
        1, 3, figsize=(7.4, 3.0), gridspec_kw=dict(width_ratios=[1.1, 1.0, 1.2], wspace=0.45)
    )
    densities = data[data["part"] == "density"]
    angles = sorted(densities["angle_deg"].unique())
    palette = dict(zip(angles, plt.cm.viridis(np.linspace(0.0, 0.9, len(angles)))))

    # X density, its two standard normal marginals, and the projection directions
    points = data[data["part"] == "sample"]
    scatter_ax.scatter(points["x1"], points["x2"], s=2, color="0.35", alpha=0.5, linewidth=0)
    for angle in angles:
        direction = np.array([np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))])
        scatter_ax.annotate(
            "", xy=3.3 * direction, xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", color=palette[angle], lw=1.2)
        )
    scatter_ax.set_xlim(-4, 4)
    scatter_ax.set_ylim(-4, 4)
    scatter_ax.set_aspect("equal")
    scatter_ax.set_xlabel("$x_1$")
    scatter_ax.set_ylabel("$x_2$")
    divider = make_axes_locatable(scatter_ax)
    top_ax = divider.append_axes("top", 0.35, pad=0.03, sharex=scatter_ax)
    right_ax = divider.append_axes("right", 0.35, pad=0.03, sharey=scatter_ax)
    t = np.linspace(-4, 4, 200)
    top_ax.hist(points["x1"], bins=40, density=True, color="0.75")
    top_ax.plot(t, stats_norm.pdf(t), color="k", lw=1)
    right_ax.hist(points["x2"], bins=40, density=True, color="0.75", orientation="horizontal")
    right_ax.plot(stats_norm.pdf(t), t, color="k", lw=1)
    for ax in (top_ax, right_ax):
        ax.set_axis_off()
    top_ax.set_title('"X" density and its N(0, 1) marginals', fontsize=8)

    # one row per direction: projected density against N(0, 1)
    offset = 0.7
    for row, angle in enumerate(angles):
        curve = densities[densities["angle_deg"] == angle]
        base = row * offset
        in_front = len(angles) - row  # lower rows in front, so a tall spike shows over the rows above
        density_ax.fill_between(
            curve["t"],
            base,
            base + curve["density"],
            facecolor=palette[angle],
            edgecolor="white",
            alpha=0.9,
            lw=0.6,
            zorder=2 * in_front,
        )
        density_ax.plot(
            curve["t"], base + stats_norm.pdf(curve["t"]), color="k", lw=0.8, ls="--", zorder=2 * in_front + 1
        )
        density_ax.text(-4.2, base + 0.05, f"{angle:.0f}°", ha="right", va="bottom", fontsize=7)
    density_ax.set_xlim(-4, 4)
    density_ax.set_yticks([])
    density_ax.spines["left"].set_visible(False)
    density_ax.set_xlabel(r"projection $a^\top x$")
    density_ax.set_title(f"{len(angles)} projections (dashed: N(0, 1))", fontsize=8)

    # each statistic per direction, normalised by its largest value
    statistics = data[data["part"] == "statistic"]
    markers = "osD^v<>p"
    for marker, (name, rows) in zip(markers, statistics.groupby("statistic", sort=False)):
        rows = rows.sort_values("angle_deg")
        statistic_ax.plot(
            rows["angle_deg"],
            rows["value"] / rows["value"].max(),
            marker=marker,
            ms=3,
            lw=1,
            color="0.45" if name == "vcreg" else None,
            ls="--" if name == "vcreg" else "-",
            label=STATISTIC_LABELS[name] + (f" (max {rows['value'].max():.3f})" if name == "vcreg" else ""),
        )
    for arm in (45, 135):
        statistic_ax.axvline(arm, color="0.6", lw=0.8, ls=":")
    statistic_ax.set_xlim(0, 180)
    statistic_ax.set_xticks(range(0, 181, 45))
    statistic_ax.set_xlabel("direction angle (degrees)")
    statistic_ax.set_ylabel("statistic / its maximum over directions")
    statistic_ax.set_title("statistic per direction (dotted: X arms)", fontsize=8)
    fig.legend(
        *statistic_ax.get_legend_handles_labels(),
        loc="lower center",
        ncol=4,
        frameon=False,
        fontsize=7,
        bbox_to_anchor=(0.5, -0.2),
    )
    return fig
