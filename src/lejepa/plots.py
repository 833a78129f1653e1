"""Shared figure style and saving for every figure of the paper."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lejepa.io import atomic_path  # noqa: E402

PAPER_STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,
}


def use_paper_style() -> None:
    """Apply the style every figure of the repo shares (call before creating a figure)."""
    plt.rcParams.update(PAPER_STYLE)


def save_figure(fig, pdf_path, png_path=None, *, dpi: int = 200) -> None:
    """Save ``fig`` as PDF (and PNG for browsing), each written atomically, then close it."""
    for path, kwargs in ((pdf_path, {}), (png_path, {"dpi": dpi})):
        if path is None:
            continue
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1], **kwargs)
    plt.close(fig)


SHOTS_ORDER = ["1", "2", "5", "10", "100", "1000", "all"]


def draw_fig12(frame):
    """Figure 12: accuracy against samples per class, one panel per dataset and protocol
    (frozen linear probe, full fine-tuning) with numbers; ours solid (± std over seeds),
    the paper's dashed. ``frame``: tables/table3.csv."""
    use_paper_style()
    frame = frame.assign(shots=frame.shots.astype(str))
    columns = list(dict.fromkeys(frame.column))
    panels = sorted(
        (
            (key, group)
            for key, group in frame.groupby(["column", "method"], sort=False)
            if group.accuracy.notna().any() or group.paper.notna().any()
        ),
        key=lambda panel: (columns.index(panel[0][0]), panel[0][1] != "linear"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0), squeeze=False)
    colours = dict(zip(frame.row.unique(), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    for ax, ((column, method), group) in zip(axes[0], panels):
        shots = [s for s in SHOTS_ORDER if s in set(group.shots)]
        for row, entries in group.groupby("row", sort=False):
            entries = entries.set_index("shots").reindex(shots)
            x = range(len(shots))
            label = entries.row_label.dropna().iloc[0]
            if entries.accuracy.notna().any():
                ax.errorbar(x, entries.accuracy, yerr=entries["std"].fillna(0), color=colours[row], marker="o",
                            ms=3, capsize=2, label=f"{label} (ours)")  # fmt: skip
            if entries.paper.notna().any():
                ax.plot(x, entries.paper, color=colours[row], ls="--", marker="x", ms=3, label=f"{label} (paper)")
        column_label = group.column_label.iloc[0]
        dataset = {label for label in group.dataset_label.dropna() if label.lower() != column_label.lower()}
        where = column_label + (f" ({dataset.pop()})" if dataset else "")
        ax.set_title(f"{where}\n{'frozen backbone' if method == 'linear' else 'full fine-tuning'}")
        ax.set_xticks(range(len(shots)), shots)
        ax.set_xlabel("samples per class")
        ax.set_ylabel("top-1 accuracy (%)")
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]}
    fig.tight_layout()
    fig.legend(handles.values(), handles.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"Figure 12 ({frame.scale.iloc[0]} scale): in-domain LeJEPA against transfer", y=1.02)
    return fig


def draw_run_metrics(metrics, *, title: str):
    """One pretraining run's metrics.csv (a DataFrame) over its epochs: the loss and its two
    terms, the online probe's accuracy, the learning rate and the throughput."""
    use_paper_style()
    fig, axes = plt.subplots(1, 4, figsize=(13, 2.8))
    epoch = metrics["epoch"]
    loss_axis, accuracy_axis, lr_axis, speed_axis = axes
    for column, style in (("loss", "-"), ("prediction", "--")):
        loss_axis.plot(epoch, metrics[column], style, label=column)
    loss_axis.set_ylabel("loss, prediction")
    sigreg_axis = loss_axis.twinx()
    sigreg_axis.plot(epoch, metrics["sigreg"], ":", color="tab:red", label="sigreg (right)")
    sigreg_axis.set_ylabel("sigreg")
    lines = loss_axis.get_legend_handles_labels()
    extra = sigreg_axis.get_legend_handles_labels()
    loss_axis.legend(lines[0] + extra[0], lines[1] + extra[1])
    for column, label in (("online_acc", "online probe, train views"), ("online_eval_acc", "online probe, held out")):
        if column in metrics and metrics[column].notna().any():
            accuracy_axis.plot(epoch, metrics[column], marker=".", label=label)
    accuracy_axis.set_ylabel("top-1 (%)")
    accuracy_axis.legend()
    lr_axis.plot(epoch, metrics["lr"], marker=".")
    lr_axis.set_ylabel("learning rate (end of epoch)")
    speed_axis.plot(epoch, metrics["img_per_s"], marker=".")
    speed_axis.set_ylabel("images / s")
    for axis in axes:
        axis.set_xlabel("epoch")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
