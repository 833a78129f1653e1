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
