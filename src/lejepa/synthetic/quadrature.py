"""Figure 20: how many trapezoid knots the Epps-Pulley integral needs.

SIGReg evaluates the Epps-Pulley statistic (paper, eq. Epps-Pulley)

    EP(x) = N * integral_{-T}^{T} |ecf_x(t) - exp(-t^2/2)|^2 * exp(-t^2/2) dt,
    ecf_x(t) = (1/N) sum_n exp(i t x_n),

with the trapezoid rule on equally spaced knots over [0, T], doubled because the
integrand is even (the official code). Knot convention: k knots on [0, T] have spacing
T / (k - 1). The paper's Algorithm 1 puts 17 knots on [-5, 5] (spacing 10/16): by
symmetry that is exactly our rule with ``algorithm1_knots(17) = 9`` knots on [0, 5],
and our default, 17 knots on [0, T], equals 33 knots on [-T, T]. Here we compare that
approximation, ``lejepa.stats.epps_pulley(x, t_max=T, knots=k)``, with the same
integral computed to near machine precision by adaptive quadrature
(``scipy.integrate.quad``), for several distributions of the 1-D projections. The
paper's claim: the error falls faster than quadratically in the number of knots and
17 knots suffice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import integrate

from lejepa import stats
from lejepa.plots import use_paper_style
from lejepa.synthetic.illustration import sample_x_shape

DISTRIBUTIONS = ("gaussian", "uniform", "bimodal", "x_projection", "heavy_tail", "collapsed")

DISTRIBUTION_LABELS = {
    "gaussian": "Gaussian N(0, 1)",
    "uniform": "uniform, unit variance",
    "bimodal": "bimodal, modes at $\\pm$1.5",
    "x_projection": "X shape on (1, 1)/$\\sqrt{2}$",
    "heavy_tail": "Student-t, 3 d.o.f.",
    "collapsed": "collapsed N(0, 0.1$^2$)",
}


PLAIN_NAMES = {
    "gaussian": "Gaussian",
    "uniform": "uniform",
    "bimodal": "bimodal",
    "x_projection": "X-projection",
    "heavy_tail": "Student-t(3)",
    "collapsed": "collapsed",
}


def sample_projections(distribution: str, *, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``num_samples`` 1-D projected embeddings from a named distribution, shape (N,)."""
    if distribution == "gaussian":
        return rng.standard_normal(num_samples)
    if distribution == "uniform":
        return rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), num_samples)
    if distribution == "bimodal":
        return rng.choice(np.array([-1.5, 1.5]), size=num_samples) + 0.5 * rng.standard_normal(num_samples)
    if distribution == "x_projection":
        # The "X" of figure 5 seen along one arm: half the mass at 0, half N(0, 2).
        return sample_x_shape(num_samples, generator=rng) @ np.array([1.0, 1.0]) / np.sqrt(2.0)
    if distribution == "heavy_tail":
        return rng.standard_t(3.0, num_samples)
    if distribution == "collapsed":
        return 0.1 * rng.standard_normal(num_samples)
    raise ValueError(f"unknown distribution {distribution!r}; expected one of {DISTRIBUTIONS}")


def epps_pulley_integrand(t: float, x: np.ndarray) -> float:
    """|ecf_x(t) - exp(-t^2/2)|^2 * exp(-t^2/2) for 1-D samples ``x`` (N,), in float64."""
    gaussian_cf = np.exp(-0.5 * t * t)
    real_error = np.cos(t * x).mean() - gaussian_cf
    imag_error = np.sin(t * x).mean()
    return (real_error * real_error + imag_error * imag_error) * gaussian_cf


def exact_epps_pulley(x: np.ndarray, *, t_max: float) -> float:
    """N * integral over [-t_max, t_max] of the integrand, by adaptive quadrature (float64)."""
    half_integral, _ = integrate.quad(
        epps_pulley_integrand, 0.0, t_max, args=(x,), epsabs=0.0, epsrel=1e-13, limit=1000
    )
    return len(x) * 2.0 * half_integral


def algorithm1_knots(knots_on_symmetric_domain: int = 17) -> int:
    """Knots on [0, T] equal to the paper's Algorithm 1 rule of k knots on [-T, T] (k odd)."""
    if knots_on_symmetric_domain < 3 or knots_on_symmetric_domain % 2 == 0:
        raise ValueError(
            f"a symmetric trapezoid rule with a knot at 0 needs an odd k >= 3, got {knots_on_symmetric_domain}"
        )
    return (knots_on_symmetric_domain + 1) // 2


ALGORITHM1_T_MAX = 5.0
ALGORITHM1_KNOTS = algorithm1_knots(17)


def _at(data: pd.DataFrame, *, t_max: float, knots: int, distribution: str | None = None) -> pd.Series:
    rows = data[(data["t_max"] == t_max) & (data["knots"] == knots)]
    if distribution is not None:
        rows = rows[rows["distribution"] == distribution]
    return rows["relative_error"]


def summarise_fig20(data: pd.DataFrame) -> dict[str, str]:
    """The numbers figure 20's caption and the README quote, formatted as there, from the data alone.

    Per T: the median Gaussian error at 17 knots on [0, T], the log-log slope of the median
    Gaussian error from 9 to 49 knots, how many draws (all distributions) exceed 1e-3 at
    17 knots; at T = 5 also the Student-t median at 17 knots and, at Algorithm 1's rule
    (9 knots on [0, 5]), the Gaussian median and the worst distribution's median."""
    summary = {}
    for t_max in sorted(data["t_max"].unique()):
        name = f"T={t_max:g}"
        gaussian = data[(data["t_max"] == t_max) & (data["distribution"] == "gaussian")]
        medians = gaussian.groupby("knots")["relative_error"].median()
        if {9, 17, 49} <= set(medians.index):
            slope = np.polyfit(np.log([9, 17, 25, 33, 49]), np.log(medians.reindex([9, 17, 25, 33, 49])), 1)[0]
            summary[f"{name} gaussian slope 9-49"] = f"{slope:.1f}"
        at17 = _at(data, t_max=t_max, knots=17)
        if len(at17):
            gaussian_at17 = _at(data, t_max=t_max, knots=17, distribution="gaussian")
            summary[f"{name} gaussian median 17"] = f"{gaussian_at17.median():.0e}"
            summary[f"{name} gaussian max 17"] = f"{gaussian_at17.max():.0e}"
            summary[f"{name} draws above 1e-3 at 17"] = f"{int((at17 > 1e-3).sum())} of {len(at17)}"
            rows = data[(data["t_max"] == t_max) & (data["knots"] == 17) & (data["relative_error"] > 1e-3)]
            names = [PLAIN_NAMES.get(d, d) for d in DISTRIBUTIONS if d in set(rows["distribution"])]
            summary[f"{name} distributions above 1e-3 at 17"] = ", ".join(names) or "none"
            heavy = _at(data, t_max=t_max, knots=17, distribution="heavy_tail")
            if len(heavy):
                summary[f"{name} heavy_tail median 17"] = f"{heavy.median():.0e}"
    algorithm1 = data[(data["t_max"] == ALGORITHM1_T_MAX) & (data["knots"] == ALGORITHM1_KNOTS)]
    if len(algorithm1):
        medians = algorithm1.groupby("distribution")["relative_error"].median()
        summary["algorithm1 gaussian median"] = f"{medians['gaussian']:.0e}"
        summary["algorithm1 worst distribution"] = str(medians.idxmax())
        summary["algorithm1 worst median"] = f"{medians.max():.0e}"
    return summary


def compute_fig20(
    *,
    distributions: tuple[str, ...] = DISTRIBUTIONS,
    knots: tuple[int, ...] = (3, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129),
    t_max_values: tuple[float, ...] = (3.0, 5.0),
    num_samples: int = 512,
    repeats: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """Relative trapezoid error of the Epps-Pulley statistic vs number of knots.

    ``t_max_values``: integration domains [-T, T] to compare (3 is the official code's
    default, 5 the paper's Algorithm 1). Every repeat draws fresh samples of every
    distribution. Returns one row per (t_max, distribution, repeat, knots) with columns
    ``t_max, distribution, repeat, knots, trapezoid, exact, relative_error``.
    """
    if not isinstance(num_samples, int) or num_samples < 2:
        raise ValueError(f"fig20: setting 'num_samples' must be an integer >= 2, got {num_samples!r}")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"fig20: setting 'repeats' must be an integer >= 1, got {repeats!r}")
    if not knots or any(not isinstance(k, int) or k < 2 for k in knots):
        raise ValueError(f"fig20: setting 'knots' must be integers >= 2, got {knots!r}")
    if not t_max_values or any(not isinstance(t, (int, float)) or t <= 0 for t in t_max_values):
        raise ValueError(f"fig20: setting 't_max_values' must be positive numbers, got {t_max_values!r}")
    for distribution in distributions:
        if distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"fig20: unknown distribution {distribution!r} in 'distributions'; expected some of {DISTRIBUTIONS}"
            )
    rng = np.random.default_rng(seed)
    rows = []
    for repeat in range(repeats):
        for distribution in distributions:
            x = sample_projections(distribution, num_samples=num_samples, rng=rng)
            x_torch = torch.from_numpy(x)  # float64, so the error we see is the quadrature's
            for t_max in t_max_values:
                exact = exact_epps_pulley(x, t_max=float(t_max))
                for num_knots in knots:
                    trapezoid = float(stats.epps_pulley(x_torch, t_max=float(t_max), knots=num_knots))
                    rows.append(
                        dict(
                            t_max=float(t_max),
                            distribution=distribution,
                            repeat=repeat,
                            knots=num_knots,
                            trapezoid=trapezoid,
                            exact=exact,
                            relative_error=abs(trapezoid - exact) / exact,
                        )
                    )
    return pd.DataFrame(rows)


PANEL_TITLES = {
    3.0: "T = 3, the official code's default:\nk knots on [0, 3]",
    5.0: "T = 5, the paper's Algorithm 1:\nk knots on [0, 5] (Algorithm 1: 17 on [-5, 5] = 9 here)",
}


def draw_fig20(data: pd.DataFrame, **settings):
    """Log-log relative error vs knots, one panel per domain, one line per distribution
    (median over repeats, min-max band), with a quadratic-rate reference in grey; dotted:
    our default of 17 knots, and on the T = 5 panel dashed: Algorithm 1's rule (9 knots
    on [0, 5])."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    use_paper_style()
    domains = sorted(data["t_max"].unique())
    fig, axes = plt.subplots(1, len(domains), figsize=(3.6 * len(domains), 3.2), sharey=True, squeeze=False)
    for ax, t_max in zip(axes[0], domains):
        domain = data[data["t_max"] == t_max]
        for distribution, group in domain.groupby("distribution", sort=False):
            summary = group.groupby("knots")["relative_error"].agg(["median", "min", "max"])
            label = DISTRIBUTION_LABELS.get(distribution, distribution)
            (line,) = ax.plot(summary.index, summary["median"], marker="o", markersize=2.5, linewidth=1.2, label=label)
            ax.fill_between(summary.index, summary["min"], summary["max"], color=line.get_color(), alpha=0.15,
                            linewidth=0)  # fmt: skip
        # Quadratic rate k^-2 through the largest median error at the fewest knots.
        knots = np.array(sorted(domain["knots"].unique()), dtype=float)
        start = domain[domain["knots"] == knots[0]].groupby("distribution")["relative_error"].median().max()
        ax.plot(knots, start * (knots / knots[0]) ** -2.0, color="grey", linewidth=2.5, alpha=0.5,
                label="quadratic rate $k^{-2}$")  # fmt: skip
        ax.axvline(17, color="black", linestyle=":", linewidth=0.8, label="17 knots on [0, T] (our default)")
        if t_max == ALGORITHM1_T_MAX:
            ax.axvline(ALGORITHM1_KNOTS, color="black", linestyle="--", linewidth=0.8,
                       label="Algorithm 1: 17 knots on [-5, 5]")  # fmt: skip
        ax.axhline(1e-3, color="black", linestyle=":", linewidth=0.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(FixedLocator([k for k in (3, 5, 9, 17, 33, 65, 129, 257) if k <= knots.max()]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("number of knots $k$ on [0, T]")
        ax.set_title(PANEL_TITLES.get(float(t_max), f"T = {t_max:g}: k knots on [0, {t_max:g}]"), fontsize=8)
    axes[0, 0].set_ylabel("relative error of the trapezoid rule\n(median over draws, band: min-max)")
    handles = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False,
               fontsize=7)  # fmt: skip
    return fig
