"""Rule fig12: tables/table3.csv -> figures/fig12.{pdf,png} (accuracy against samples per class)."""

import pandas as pd

from lejepa.io import send_output_to_log
from lejepa.plots import draw_fig12, save_figure

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
save_figure(draw_fig12(pd.read_csv(snakemake.input[0])), snakemake.output.pdf, snakemake.output.png)
