"""The synthetic experiments (no data, no GPU), one module per figure group.

Every figure ``figN`` has two functions in its module:

- ``compute_figN(**settings) -> pandas.DataFrame``: runs the experiment and returns the
  numbers behind the figure in long form (written to ``figures/data/figN.csv``);
  ``settings`` are exactly the keys of ``synthetic.figN`` in ``config/config.yaml``.
- ``draw_figN(data, **settings) -> matplotlib.figure.Figure``: draws the figure from
  those numbers alone, so a figure can be redrawn from its CSV.
"""

from __future__ import annotations

import importlib

FIGURE_MODULES = {
    "fig2": "illustration",
    "fig5": "illustration",
    "fig3": "lemmas",
    "fig17": "lemmas",
    "fig18": "lemmas",
    "fig4": "sphere",
    "fig15": "sphere",
    "fig6": "optimise",
    "fig16": "optimise",
    "fig7": "optimise",
    "fig20": "quadrature",
}


def experiment(figure: str):
    """Return ``(compute, draw)`` for a figure name such as ``"fig6"``."""
    if figure not in FIGURE_MODULES:
        raise ValueError(f"unknown synthetic figure {figure!r}; expected one of {sorted(FIGURE_MODULES)}")
    module = importlib.import_module(f"lejepa.synthetic.{FIGURE_MODULES[figure]}")
    return getattr(module, f"compute_{figure}"), getattr(module, f"draw_{figure}")
