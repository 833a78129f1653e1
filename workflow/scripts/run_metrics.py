"""Rule run_metrics: runs/<run>/metrics.csv (a param) -> results/<run>/metrics.png, the run's curves."""

import pandas as pd

from lejepa.io import send_output_to_log
from lejepa.plots import draw_run_metrics, save_figure

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
figure = draw_run_metrics(pd.read_csv(snakemake.params.metrics[0]), title=f"pretraining run {snakemake.wildcards.run}")
save_figure(figure, snakemake.output.png)
