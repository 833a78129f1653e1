"""Figures of the sweeps: figure 8 (table 7's heat map) and the loss pool's figures 1 (top),
10, 11, 19 and 21. The numbers come from lejepa.sweeps; every figure names its scale."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lejepa.plots import plt, use_paper_style
from lejepa.sweeps import (
    PAPER_FIG1_SPEARMAN,
    PAPER_FIG11_SPEARMAN,
    alpha_curve,
    budget_text,
    fig1_numbers,
    format_value,
    pool_runs,
    spearman_percent,
)

RUN_COLUMNS = ["run", "sweep", "scale", "dataset", "backbone", "lam", "views", "seed", "epochs", "accuracy",
               "final_loss", "final_prediction", "final_sigreg"]  # fmt: skip


def _heat_map(ax, frame: pd.DataFrame, column: str, title: str, *, vmin: float, vmax: float):
    lams = sorted(frame.lam.unique())
    views = sorted(frame.views.unique())
    grid = np.full((len(views), len(lams)), np.nan)
    for row in frame.dropna(subset=[column]).itertuples():
        grid[views.index(row.views), lams.index(row.lam)] = getattr(row, column)
    image = ax.imshow(grid, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    for i in range(len(views)):
        for j in range(len(lams)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=6,
                        color="white" if grid[i, j] < (vmin + vmax) / 2 else "black")  # fmt: skip
    ax.set_xticks(range(len(lams)), [format_value(lam) for lam in lams], rotation=45)
    ax.set_yticks(range(len(views)), [str(int(v)) for v in views])
    ax.set_xlabel("lambda")
    ax.set_ylabel("views V")
    ax.set_title(title)
    return image


def draw_fig8(frame: pd.DataFrame):
    """Figure 8: top-1 accuracy over lambda x views, ours (tables/table7.csv) beside the paper's."""
    use_paper_style()
    scale = frame.scale.iloc[0]
    ours = frame.dropna(subset=["accuracy"])
    paper = frame.dropna(subset=["paper"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 1.6]})
    if len(ours):
        first = ours.iloc[0]
        title = (f"ours ({scale} scale): {first.backbone}, {first.pretrain_dataset},\n{budget_text(first)}, "
                 f"probe on {first.dataset}")  # fmt: skip
        low, high = ours.accuracy.min(), ours.accuracy.max()
        fig.colorbar(_heat_map(axes[0], ours, "accuracy", title, vmin=low, vmax=max(high, low + 1e-6)), ax=axes[0])
    else:
        axes[0].text(0.5, 0.5, f"no cell computed at the {scale} scale", ha="center", va="center")
        axes[0].set_axis_off()
    image = _heat_map(axes[1], paper, "paper", "paper: resnet50, ImageNet-100, 400 epochs", vmin=76.0, vmax=85.0)
    fig.colorbar(image, ax=axes[1])
    fig.suptitle("Figure 8: linear-probe accuracy (%) over lambda x views", y=1.02)
    return fig


def _empty(title: str, scale: str):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.text(0.5, 0.5, f"no run in the {scale}-scale pool", ha="center", va="center")
    ax.set_axis_off()
    ax.set_title(title)
    return fig


def _group(runs: pd.DataFrame) -> pd.Series:
    return runs.backbone + ", " + runs.dataset


def draw_fig1(pool: pd.DataFrame, *, scale: str):
    """Figure 1 (top): left, training loss and online-probe accuracy over one run's epochs with their
    Spearman correlation (ours beside the paper's 94.52%); right, the loss curve of the longest run."""
    use_paper_style()
    numbers = fig1_numbers(pool)
    if numbers.empty:
        return _empty("Figure 1 (top)", scale), numbers
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    left = numbers[numbers.panel == "top_left"]
    if len(left):
        rho = left.spearman.iloc[0]
        axes[0].plot(left.epoch, left.loss, "o-", color="tab:blue")
        axes[0].set_ylabel("training loss", color="tab:blue")
        twin = axes[0].twinx()
        twin.plot(left.epoch, left.online_eval_acc, "s--", color="tab:red")
        twin.set_ylabel("online linear probe accuracy (%)", color="tab:red")
        axes[0].set_title(f"{left.run.iloc[0]}\nSpearman {rho:.2f}% (paper: {PAPER_FIG1_SPEARMAN}%)")
    else:
        axes[0].text(0.5, 0.5, "no run has 3 epochs of online-probe accuracy", ha="center", va="center")
    axes[0].set_xlabel("epoch")
    right = numbers[numbers.panel == "top_right"]
    axes[1].plot(right.epoch, right.loss, "o-", color="black")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("training loss")
    axes[1].set_title(f"longest run: {right.run.iloc[0]} ({int(pool[pool.run == right.run.iloc[0]].step.max())} steps)")
    fig.suptitle(f"Figure 1 (top), {scale} scale, {pool.run.nunique()} runs in the pool", y=1.04)
    fig.tight_layout()
    return fig, numbers


def _plane(ax, runs: pd.DataFrame, title: str, *, vmin: float, vmax: float):
    points = ax.scatter(runs.final_sigreg, runs.final_prediction, c=runs.accuracy, cmap="coolwarm",
                        vmin=vmin, vmax=vmax, s=30, edgecolor="black", linewidth=0.4)  # fmt: skip
    for row in runs.itertuples():
        ax.annotate(f"{format_value(row.lam)}/V{int(row.views)}", (row.final_sigreg, row.final_prediction),
                    fontsize=5, xytext=(2, 2), textcoords="offset points")  # fmt: skip
    if (runs.final_sigreg > 0).all():
        ax.set_xscale("log")
    if (runs.final_prediction > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("final SIGReg loss")
    ax.set_ylabel("final prediction loss")
    ax.set_title(title)
    return points


def draw_plane(pool: pd.DataFrame, *, scale: str, figure: str):
    """Figures 10 and 21: the (SIGReg, prediction) plane coloured by probe accuracy (blue low, red
    high), points labelled lambda/V. Figure 10: the sweeps' runs; figure 21: every run of the pool,
    one panel per (backbone, dataset)."""
    use_paper_style()
    runs = pool_runs(pool)
    if figure == "fig10" and (runs.sweep.fillna("") != "").any():
        runs = runs[runs.sweep.fillna("") != ""]
    runs = runs.assign(group=_group(runs))
    numbers = runs[RUN_COLUMNS + ["group"]]
    if runs.empty:
        return _empty(f"Figure {figure[3:]}", scale), numbers
    groups = list(runs.groupby("group"))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.4), squeeze=False)
    low, high = runs.accuracy.min(), max(runs.accuracy.max(), runs.accuracy.min() + 1e-6)
    for ax, (name, group) in zip(axes[0], groups):
        points = _plane(ax, group, f"{name} ({len(group)} runs)", vmin=low, vmax=high)
    fig.colorbar(points, ax=axes[0].tolist(), label="probe accuracy (%)")
    what = "the sweeps' runs" if figure == "fig10" else "every run of the pool"
    fig.suptitle(f"Figure {figure[3:]}: (SIGReg, prediction) at the end of training, {what}, {scale} scale",
                 y=1.04)  # fmt: skip
    return fig, numbers


def draw_fig11(pool: pd.DataFrame, *, scale: str, alphas):
    """Figure 11: Spearman (%) of probe accuracy against training loss / lambda^alpha, per alpha, for the
    pool and each (backbone, dataset) group of at least 3 runs; the paper's ~85% (alpha 0) and ~99% (0.4)."""
    use_paper_style()
    runs = pool_runs(pool)
    curve = alpha_curve(runs, alphas)
    if runs.empty:
        return _empty("Figure 11", scale), curve
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for name, group in curve.groupby("group", sort=False):
        ax.plot(group.alpha, group.spearman, "o-", markersize=3, label=f"ours: {name} ({group.runs.iloc[0]} runs)")
    ax.plot(list(PAPER_FIG11_SPEARMAN), list(PAPER_FIG11_SPEARMAN.values()), "k*", markersize=9,
            label="paper (about)")  # fmt: skip
    ax.set_xlabel("alpha (loss / lambda^alpha)")
    ax.set_ylabel("Spearman correlation (%)")
    ax.set_title(f"Figure 11, {scale} scale")
    ax.legend(fontsize=6)
    return fig, curve


def draw_fig19(pool: pd.DataFrame, *, scale: str):
    """Figure 19: probe accuracy against the final training loss (log scale), one colour per
    (backbone, dataset), with each group's Spearman."""
    use_paper_style()
    runs = pool_runs(pool)
    runs = runs.assign(group=_group(runs))
    rho = {name: spearman_percent(group.final_loss, group.accuracy) for name, group in runs.groupby("group")}
    numbers = runs[RUN_COLUMNS + ["group"]].assign(spearman=runs.group.map(rho).astype(float))
    if runs.empty:
        return _empty("Figure 19", scale), numbers
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for name, group in numbers.groupby("group"):
        rho = group.spearman.iloc[0]
        label = f"{name}: {len(group)} runs" + ("" if np.isnan(rho) else f", Spearman {rho:.0f}%")
        ax.scatter(group.final_loss, group.accuracy, s=20, label=label)
    if (runs.final_loss > 0).all():
        ax.set_xscale("log")
    ax.set_xlabel("final training loss (log scale)")
    ax.set_ylabel("probe accuracy (%)")
    ax.set_title(f"Figure 19, {scale} scale")
    ax.legend(fontsize=6)
    return fig, numbers


def pool_figure(name: str, pool: pd.DataFrame, *, alphas, scale: str):
    """(matplotlib figure, its numbers) of one of the pool's figures: fig1, fig10, fig11, fig19, fig21."""
    if name == "fig1":
        return draw_fig1(pool, scale=scale)
    if name in ("fig10", "fig21"):
        return draw_plane(pool, scale=scale, figure=name)
    if name == "fig11":
        return draw_fig11(pool, scale=scale, alphas=alphas)
    if name == "fig19":
        return draw_fig19(pool, scale=scale)
    raise ValueError(f"not a figure of the loss pool: {name!r}; known: fig1, fig10, fig11, fig19, fig21")
