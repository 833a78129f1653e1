"""Rule fig9: tables/fig9.csv -> figures/fig9.{pdf,png} (a bar per model, its parameter count)."""

import pandas as pd

from lejepa.backbone_plots import backbone_parameters, draw_fig9
from lejepa.io import send_output_to_log
from lejepa.plots import save_figure

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
parameters = {run: backbone_parameters(settings) for run, settings in snakemake.params.runs.items()}
save_figure(draw_fig9(pd.read_csv(snakemake.input[0]), parameters), snakemake.output.pdf, snakemake.output.png)
