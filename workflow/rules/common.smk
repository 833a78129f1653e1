# Helpers shared by all rules: config validation and the lists of targets.
from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")


# Figures of the paper built from synthetic data, in the paper's order.
# Each has compute_figN/draw_figN in src/lejepa/synthetic/ (lejepa.synthetic.experiment).
SYNTHETIC_FIGURES = [
    "fig2",
    "fig3",
    "fig4",
    "fig5",
    "fig6",
    "fig7",
    "fig15",
    "fig16",
    "fig17",
    "fig18",
    "fig20",
]


def synthetic_figure_targets():
    """figures/figN.pdf, figures/figN.png and figures/data/figN.csv of every synthetic figure."""
    return expand(
        ["figures/{figure}.pdf", "figures/{figure}.png", "figures/data/{figure}.csv"],
        figure=SYNTHETIC_FIGURES,
    )


def table6_targets():
    return ["tables/table6.csv", "tables/table6.md"]


def synthetic_targets():
    """Everything that needs neither data nor a GPU: the synthetic figures and table 6."""
    return synthetic_figure_targets() + table6_targets()
