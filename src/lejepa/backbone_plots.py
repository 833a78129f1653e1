"""Figure 9: frozen linear-probe accuracy of one timm model per family, as bars with each
backbone's parameter count (from tables/fig9.csv, the rows of config/tables.yaml's fig9)."""

from __future__ import annotations

import math

import pandas as pd

from lejepa.plots import plt, use_paper_style

PAPER_FIG9_RANGE = (91.5, 95.0)  # the paper: every model lands in this range on ImageNet-10


def backbone_parameters(settings: dict) -> int:
    """Parameters of a run's backbone (no projector), built as lejepa.train builds it."""
    from lejepa.models import encoder_from_config

    return sum(p.numel() for p in encoder_from_config(settings).backbone.parameters())


def draw_fig9(frame: pd.DataFrame, parameters: dict[str, int]):
    """One bar per row of the table with a number (ours), labelled with the parameter count of
    the run's backbone; rows without one are listed under the axis with their status."""
    use_paper_style()
    cells = frame[frame.probe == "linear"]
    measured = cells[cells.accuracy.notna()]
    missing = cells[cells.accuracy.isna()]
    fig, ax = plt.subplots(figsize=(max(3.0, 0.7 * len(measured) + 1.5), 2.8))
    colours = plt.get_cmap("tab10")
    for position, (_, cell) in enumerate(measured.iterrows()):
        ax.bar(position, cell.accuracy, color=colours(position % 10), yerr=None)
        count = parameters.get(cell.run)
        label = f"{count / 1e6:.1f}M" if count else "random init" if cell.run_kind == "random_init" else ""
        ax.text(position, cell.accuracy + 0.5, f"{cell.accuracy:.1f}\n{label}", ha="center", va="bottom", fontsize=6)
    ax.axhspan(*PAPER_FIG9_RANGE, color="grey", alpha=0.2, linestyle="--", label="paper, ImageNet-10: 91.5-95")
    ax.set_xticks(range(len(measured)), [label.split(" (")[0] for label in measured.row_label], rotation=45,
                  ha="right")  # fmt: skip
    top = max([PAPER_FIG9_RANGE[1], *measured.accuracy]) if len(measured) else 100.0
    ax.set_ylim(0, min(100.0, 10 * math.ceil(top / 10 + 0.5)))
    ax.set_ylabel("frozen linear probe, top-1 %")
    dataset = measured.dataset_label.iloc[0] if len(measured) else "no cell measured"
    scale = frame.scale.iloc[0] if len(frame) else "?"
    ax.set_title(f"Figure 9 ({scale} scale): {dataset}", fontsize=8)
    ax.legend(loc="best", fontsize=6)  # clear of the bars, whatever their heights
    if len(missing):
        pairs = zip(missing.row_label, missing.status)
        text = "; ".join(f"{label.split(' (')[0]}: {status}" for label, status in pairs)
        fig.text(0.01, -0.02, "not shown: " + text, fontsize=5, va="top", wrap=True)
    return fig
