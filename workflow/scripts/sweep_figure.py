"""Rule sweep_figure: tables/table7.csv -> figures/fig8.{pdf,png} (the lambda x views heat map)."""

import pandas as pd

from lejepa.io import send_output_to_log
from lejepa.plots import save_figure
from lejepa.sweep_plots import draw_fig8

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
save_figure(draw_fig8(pd.read_csv(snakemake.input[0])), snakemake.output.pdf, snakemake.output.png)
