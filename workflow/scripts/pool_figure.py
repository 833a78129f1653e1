"""Rule pool_figure: tables/loss_pool.csv -> figures/figN.{pdf,png} and its numbers figures/data/figN.csv
(figures 1 top, 10, 11, 19, 21)."""

import pandas as pd

from lejepa.io import send_output_to_log, write_csv
from lejepa.plots import save_figure
from lejepa.sweep_plots import pool_figure

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
figure, numbers = pool_figure(
    snakemake.wildcards.figure,
    pd.read_csv(snakemake.input[0]),
    alphas=snakemake.params.alphas,
    scale=snakemake.params.scale,
)
write_csv(numbers, snakemake.output.data)
save_figure(figure, snakemake.output.pdf, snakemake.output.png)
