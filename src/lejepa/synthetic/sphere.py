"""Figures 4 and 15: smoothness on the sphere, and why few directions constrain all of them.

Theorem 5 of the paper: if a function of the direction a in S^{D-1} (the characteristic
function, CDF or moments of the projection a^T z) has Sobolev smoothness alpha, then
knowing it on |A| quasi-uniform directions pins it down everywhere up to an expected
squared error C(alpha, D) |A|^{-2 alpha / (D - 1)} ||.||^2_{H^alpha}.

Random functions of prescribed smoothness on S^2 (D = 3)
--------------------------------------------------------
We expand a function in real spherical harmonics, f = sum_{l, m} c_lm Y_lm, with
independent Gaussian coefficients

    c_lm ~ N(0, (1 + l (l + 1))^{-(alpha + 1)}),   l = 0 .. max_degree.

The Sobolev norm is ||f||^2_{H^s} = sum_lm (1 + l(l+1))^s c_lm^2, whose expectation
sum_l (2l + 1) (1 + l(l+1))^{s - alpha - 1} is finite exactly for s < alpha: the field has
smoothness alpha (it is in H^s for every s < alpha, and no smoother). The squared error
of its best degree-L approximation is sum_{l > L} (2l + 1) (1 + l(l+1))^{-alpha-1} ~ L^{-2 alpha},
and L^2 ~ |A| harmonics can be fitted from |A| directions, which gives theorem 5's rate
|A|^{-alpha} = |A|^{-2 alpha / (D - 1)} at D = 3: the field is a worst case for the bound.

Figure 4 turns such a field into a density on the sphere, p(u) proportional to
exp(contrast * f(u) / std(f)), shown for alpha = 10 (smooth) and alpha = 1 (rough). With
the variance above, an alpha = 10 field is almost a pure degree-1 field (a plain colour
gradient), so figure 4 uses a Matern-type field with a length scale:

    c_lm ~ N(0, (kappa^2 + l (l + 1))^{-(alpha + 1)}),

the same smoothness alpha (the two variances agree up to constants once l > kappa), with
the low degrees up to about kappa / sqrt(2 alpha + 1) carrying comparable power: smooth
blobs of that degree for alpha = 10, and power spread up to max_degree (rough) for
alpha = 1. kappa = 1 gives back the field above; figure 15 keeps it.
Figure 15 plots the bound's rate, and measures the rate on S^2 by fitting the
harmonics of degree <= L by least squares to the values at |A| Fibonacci-lattice
directions (quasi-uniform) and computing the squared L^2 error over the whole sphere
exactly from the coefficients (Parseval).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import sph_harm_y_all

from lejepa.plots import use_paper_style


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if int(value) != value or value < minimum:
        raise ValueError(f"setting {name!r} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _significant(values, digits: int = 10) -> np.ndarray:
    """Round to ``digits`` significant digits, so the CSV does not depend on the BLAS thread count."""
    values = np.asarray(values, dtype=float)
    return np.array([float(f"{v:.{digits}g}") for v in values.ravel()]).reshape(values.shape)


def harmonic_degrees(max_degree: int) -> np.ndarray:
    """Degree l of each real harmonic, in the order used by ``real_spherical_harmonics``: ((L+1)^2,)."""
    return np.concatenate([np.full(2 * degree + 1, degree) for degree in range(max_degree + 1)])


def real_spherical_harmonics(
    max_degree: int, polar: np.ndarray, azimuth: np.ndarray, *, chunk: int = 512
) -> np.ndarray:
    """Real orthonormal spherical harmonics up to ``max_degree`` at points (polar, azimuth) in radians.

    Returns (P, (L+1)^2), ordered by degree l, then m = 0, +1, -1, +2, -2, ...; orthonormal
    for the surface measure: integral over S^2 of Y_i Y_j = delta_ij. Built from scipy's
    complex harmonics: sqrt(2) Re Y_l^m and sqrt(2) Im Y_l^m for m > 0.
    """
    polar = np.asarray(polar, dtype=float).ravel()
    azimuth = np.asarray(azimuth, dtype=float).ravel()
    degrees = range(max_degree + 1)
    degree_index = np.concatenate([np.full(2 * degree + 1, degree) for degree in degrees])
    order_index = np.concatenate([[0] + [m for m in range(1, degree + 1) for _ in (0, 1)] for degree in degrees])
    take_imaginary = np.concatenate(
        [[False] + [part for _ in range(1, degree + 1) for part in (False, True)] for degree in degrees]
    )
    weight = np.where(order_index > 0, np.sqrt(2.0), 1.0)
    blocks = []
    for start in range(0, len(polar), chunk):  # sph_harm_y_all is (L+1, 2L+1, P) complex: bound its memory
        complex_harmonics = sph_harm_y_all(
            max_degree, max_degree, polar[start : start + chunk], azimuth[start : start + chunk]
        )
        selected = complex_harmonics[degree_index, order_index]  # ((L+1)^2, chunk)
        blocks.append((weight[:, None] * np.where(take_imaginary[:, None], selected.imag, selected.real)).T)
    return np.concatenate(blocks, axis=0)


def sobolev_coefficients(
    *, alpha: float, max_degree: int, n_fields: int, rng: np.random.Generator, kappa: float = 1.0
) -> np.ndarray:
    """Random coefficients c_lm ~ N(0, (kappa^2 + l(l+1))^{-(alpha+1)}) of ``n_fields`` fields of smoothness alpha.

    ``kappa`` (a length scale, in degrees) only reshapes the low degrees; see the module
    docstring. Returns (n_fields, (max_degree+1)^2).
    """
    degrees = harmonic_degrees(max_degree)
    scale = (kappa**2 + degrees * (degrees + 1.0)) ** (-(alpha + 1.0) / 2.0)
    return rng.standard_normal((n_fields, len(degrees))) * scale


def fibonacci_sphere(n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(polar, azimuth) of ``n_points`` quasi-uniform directions on S^2 (Fibonacci lattice)."""
    index = np.arange(n_points) + 0.5
    polar = np.arccos(1.0 - 2.0 * index / n_points)
    azimuth = (np.pi * (1.0 + np.sqrt(5.0)) * index) % (2.0 * np.pi)
    return polar, azimuth


# ----------------------------------------------------------------------------------------
# Figure 4: densities on S^2 with Sobolev smoothness alpha
# ----------------------------------------------------------------------------------------


def compute_fig4(
    *,
    alphas=(10.0, 1.0),
    n_draws: int = 3,
    max_degree: int = 48,
    n_polar: int = 80,
    n_azimuth: int = 160,
    contrast: float = 1.5,
    kappa: float = 20.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Densities p(u) = exp(contrast * f(u) / std(f)) / Z of random Matern-type fields f of
    smoothness alpha and length scale kappa (``sobolev_coefficients``).

    Evaluated at the centres of an (n_polar, n_azimuth) latitude-longitude grid and
    normalised so that p integrates to 1 over the sphere. Columns: alpha, draw, polar,
    azimuth, density, mean_degree (the field's power-weighted mean harmonic degree,
    sum_lm l c_lm^2 / sum_lm c_lm^2, one value per draw).
    """
    if not (isinstance(kappa, (int, float)) and kappa > 0):
        raise ValueError(f"setting 'kappa' must be a positive number, got {kappa!r}")
    n_draws = _check_positive_int("n_draws", n_draws)
    max_degree = _check_positive_int("max_degree", max_degree)
    n_polar = _check_positive_int("n_polar", n_polar, minimum=4)
    n_azimuth = _check_positive_int("n_azimuth", n_azimuth, minimum=4)
    if any(alpha <= 0 for alpha in alphas):
        raise ValueError(f"setting 'alphas' must be positive, got {alphas!r}")
    polar = (np.arange(n_polar) + 0.5) * np.pi / n_polar
    azimuth = (np.arange(n_azimuth) + 0.5) * 2 * np.pi / n_azimuth
    polar_grid, azimuth_grid = np.meshgrid(polar, azimuth, indexing="ij")  # (n_polar, n_azimuth)
    harmonics = real_spherical_harmonics(max_degree, polar_grid, azimuth_grid)  # (P, H)
    area = (np.sin(polar_grid) * (np.pi / n_polar) * (2 * np.pi / n_azimuth)).ravel()  # (P,)

    rng = np.random.default_rng(seed)
    frames = []
    for alpha in alphas:
        coefficients = sobolev_coefficients(
            alpha=alpha, max_degree=max_degree, n_fields=n_draws, rng=rng, kappa=kappa
        )  # (n_draws, H)
        coefficients[:, 0] = 0.0  # the constant only rescales the density
        degrees = harmonic_degrees(max_degree)
        mean_degrees = (coefficients**2 @ degrees) / (coefficients**2).sum(axis=1)
        for draw, field in enumerate(coefficients @ harmonics.T):  # field (P,)
            log_density = contrast * field / np.sqrt(np.average(field**2, weights=area))
            density = np.exp(log_density - log_density.max())
            density /= np.sum(density * area)
            density = _significant(density)
            frames.append(
                pd.DataFrame(
                    dict(
                        alpha=alpha, draw=draw, polar=polar_grid.ravel(), azimuth=azimuth_grid.ravel(), density=density,
                        mean_degree=round(float(mean_degrees[draw]), 3),
                    )
                )
            )
    return pd.concat(frames, ignore_index=True)


def summarise_fig4(data: pd.DataFrame) -> dict[str, str]:
    """The numbers figure 4's caption quotes, formatted as there, from the data alone:
    per alpha, the range over draws of the fields' power-weighted mean degree."""
    summary = {}
    for alpha, rows in data.groupby("alpha", sort=False):
        per_draw = rows.groupby("draw")["mean_degree"].first()
        summary[f"alpha={alpha:g} mean degree"] = f"{per_draw.min():.1f}-{per_draw.max():.1f}"
    return summary


def _closed_grid(values: np.ndarray) -> np.ndarray:
    """Repeat the first azimuth column at the end and the edge rows at the poles so the surface has no seam."""
    values = np.concatenate([values, values[:, :1]], axis=1)
    return np.concatenate([values[:1], values, values[-1:]], axis=0)


def draw_fig4(data: pd.DataFrame, **settings):
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    use_paper_style()
    alphas = list(dict.fromkeys(data["alpha"]))
    draws = sorted(data["draw"].unique())
    fig = plt.figure(figsize=(1.9 * len(draws) + 0.6, 2.0 * len(alphas)))
    for row, alpha in enumerate(alphas):
        for col, draw in enumerate(draws):
            sphere = data[(data["alpha"] == alpha) & (data["draw"] == draw)]
            n_polar = sphere["polar"].nunique()
            density = _closed_grid(sphere["density"].to_numpy().reshape(n_polar, -1))
            polar = _closed_grid(sphere["polar"].to_numpy().reshape(n_polar, -1))
            polar[0], polar[-1] = 0.0, np.pi
            azimuth = _closed_grid(sphere["azimuth"].to_numpy().reshape(n_polar, -1))
            azimuth[:, -1] += 2 * np.pi
            ax = fig.add_subplot(
                len(alphas), len(draws), row * len(draws) + col + 1, projection="3d", proj_type="ortho"
            )
            log_density = np.log(density)
            face_colors = cm.viridis(colors.Normalize(vmin=log_density.min(), vmax=log_density.max())(log_density))
            ax.plot_surface(
                np.sin(polar) * np.cos(azimuth),
                np.sin(polar) * np.sin(azimuth),
                np.cos(polar),
                facecolors=face_colors,
                rstride=1,
                cstride=1,
                linewidth=0,
                antialiased=False,
                shade=False,
                rasterized=True,
            )
            ax.set_xlim(-1, 1)
            ax.set_ylim(-1, 1)
            ax.set_zlim(-1, 1)
            ax.set_box_aspect((1, 1, 1), zoom=1.35)
            ax.view_init(elev=20, azim=-60)
            ax.set_axis_off()
            if col == 0:
                ax.text2D(
                    -0.08,
                    0.5,
                    f"Sobolev $\\alpha$ = {alpha:g}",
                    transform=ax.transAxes,
                    rotation=90,
                    va="center",
                    ha="center",
                    fontsize=10,
                )
    colorbar_ax = fig.add_axes((0.9, 0.3, 0.02, 0.4))
    fig.colorbar(
        cm.ScalarMappable(cmap="viridis"), cax=colorbar_ax, ticks=[0, 1], label="log density (per sphere)"
    ).ax.set_yticklabels(["min", "max"])
    fig.subplots_adjust(left=0.05, right=0.86, top=0.99, bottom=0.01, wspace=0.0, hspace=0.0)
    return fig


# ----------------------------------------------------------------------------------------
# Figure 15: theorem 5's bound vs number of directions
# ----------------------------------------------------------------------------------------


def theorem5_rate(n_directions: np.ndarray, *, alpha: float, dim: int) -> np.ndarray:
    """|A|^{-2 alpha / (D - 1)}: theorem 5's bound with the constant C(alpha, D) ||.||^2 set to 1."""
    return np.asarray(n_directions, dtype=float) ** (-2.0 * alpha / (dim - 1))


def sphere_reconstruction_errors(coefficients: np.ndarray, *, n_directions: int, oversampling: float) -> np.ndarray:
    """Relative squared L^2(S^2) error of the least-squares harmonic fit from ``n_directions`` directions.

    ``coefficients`` (F, H) define F true fields, H = (max_degree+1)^2; we fit the harmonics
    of degree <= L, with (L+1)^2 <= n_directions / oversampling, to their values on a
    Fibonacci lattice and return the error of each field, (F,).
    """
    max_degree = int(np.sqrt(coefficients.shape[1])) - 1
    fit_degree = int(np.floor(np.sqrt(n_directions / oversampling))) - 1
    if fit_degree < 0 or fit_degree >= max_degree:
        raise ValueError(
            f"n_directions={n_directions} needs a fit degree in [0, max_degree={max_degree}), got {fit_degree}"
        )
    polar, azimuth = fibonacci_sphere(n_directions)
    harmonics = real_spherical_harmonics(max_degree, polar, azimuth)  # (|A|, H)
    values = harmonics @ coefficients.T  # (|A|, F)
    n_fit = (fit_degree + 1) ** 2
    fitted, *_ = np.linalg.lstsq(harmonics[:, :n_fit], values, rcond=None)  # (n_fit, F)
    error = np.sum((fitted.T - coefficients[:, :n_fit]) ** 2, axis=1) + np.sum(coefficients[:, n_fit:] ** 2, axis=1)
    return error / np.sum(coefficients**2, axis=1)


def compute_fig15(
    *,
    bound_dim: int = 128,
    bound_alphas=(4.0, 16.0, 32.0, 64.0, 128.0),
    empirical_alphas=(0.5, 1.0, 2.0, 3.0),
    n_directions=(8, 16, 32, 64, 128, 256, 512, 1024, 2048),
    n_fields: int = 8,
    max_degree: int = 64,
    oversampling: float = 2.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Theorem 5's rate in dimension ``bound_dim``, and the measured rate on S^2 (D = 3).

    Rows with ``source == "bound"``: |A|^{-2 alpha/(D-1)} for D = bound_dim, alpha in
    bound_alphas (the constant of the theorem set to 1). Rows with ``source == "empirical"``:
    mean, std, min (low) and max (high) over ``n_fields`` random fields of smoothness alpha
    of the relative squared reconstruction error from |A| directions (see module
    docstring); D = 3. Columns: source, dim, alpha, n_directions, mean, std, low, high.
    """
    bound_dim = _check_positive_int("bound_dim", bound_dim, minimum=2)
    n_fields = _check_positive_int("n_fields", n_fields)
    max_degree = _check_positive_int("max_degree", max_degree)
    n_directions = [_check_positive_int("n_directions", n) for n in n_directions]
    if oversampling < 1:
        raise ValueError(f"setting 'oversampling' must be >= 1, got {oversampling!r}")
    rows = []
    for alpha in bound_alphas:
        for n, value in zip(n_directions, theorem5_rate(n_directions, alpha=alpha, dim=bound_dim)):
            rows.append(
                dict(
                    source="bound",
                    dim=bound_dim,
                    alpha=alpha,
                    n_directions=n,
                    mean=value,
                    std=0.0,
                    low=value,
                    high=value,
                )
            )
    rng = np.random.default_rng(seed)
    fields = {
        alpha: sobolev_coefficients(alpha=alpha, max_degree=max_degree, n_fields=n_fields, rng=rng)
        for alpha in empirical_alphas
    }
    all_fields = np.concatenate(list(fields.values()))  # one least-squares solve per |A| for every field
    for n in n_directions:
        errors = np.split(
            sphere_reconstruction_errors(all_fields, n_directions=n, oversampling=oversampling), len(fields)
        )
        for alpha, alpha_errors in zip(fields, errors):
            rows.append(
                dict(
                    source="empirical",
                    dim=3,
                    alpha=alpha,
                    n_directions=n,
                    mean=alpha_errors.mean(),
                    std=alpha_errors.std(),
                    low=alpha_errors.min(),
                    high=alpha_errors.max(),
                )
            )
    data = pd.DataFrame(rows, columns=["source", "dim", "alpha", "n_directions", "mean", "std", "low", "high"])
    for column in ("mean", "std", "low", "high"):
        data[column] = _significant(data[column])
    return data


def loglog_slope(n_directions, values) -> float:
    """Least-squares slope of log(values) against log(n_directions)."""
    return float(np.polyfit(np.log(n_directions), np.log(values), 1)[0])


def draw_fig15(data: pd.DataFrame, **settings):
    import matplotlib.pyplot as plt

    use_paper_style()
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.0))
    for ax, source in zip(axes, ("bound", "empirical")):
        rows = data[data["source"] == source]
        alphas = sorted(rows["alpha"].unique())
        palette = plt.cm.coolwarm(np.linspace(0, 1, len(alphas)))  # blue (rough) to red (smooth), as the paper
        dim = int(rows["dim"].iloc[0])
        for alpha, color in zip(alphas, palette):
            curve = rows[rows["alpha"] == alpha].sort_values("n_directions")
            expected = -2 * alpha / (dim - 1)
            if source == "bound":
                ax.plot(
                    curve["n_directions"],
                    curve["mean"],
                    color=color,
                    lw=1.6,
                    label=f"$\\alpha$ = {alpha:g} (slope {expected:.2f})",
                )
            else:
                slope = loglog_slope(curve["n_directions"], curve["mean"])
                ax.plot(
                    curve["n_directions"],
                    curve["mean"],
                    color=color,
                    marker="o",
                    ms=3,
                    lw=1.2,
                    label=f"$\\alpha$ = {alpha:g}: slope {slope:.2f} (theory {expected:.2f})",
                )
                ax.fill_between(curve["n_directions"], curve["low"], curve["high"], color=color, alpha=0.2, lw=0)
                anchor = curve.iloc[0]
                ax.plot(
                    curve["n_directions"],
                    anchor["mean"] * (curve["n_directions"] / anchor["n_directions"]) ** expected,
                    color=color,
                    ls=":",
                    lw=1,
                )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("number of directions $|A|$")
        ax.legend(frameon=False, fontsize=7)
        if source == "bound":
            ax.set_ylabel(r"bound $\propto |A|^{-2\alpha/(D-1)}$")
            ax.set_title(f"theorem 5 bound, D = {dim} (constant set to 1)")
        else:
            ax.set_ylabel("relative squared error over $S^2$\n(mean; band: min-max over fields)")
            ax.set_title("measured on $S^2$ (D = 3); dotted: theorem 5 rate")
    fig.tight_layout()
    return fig
