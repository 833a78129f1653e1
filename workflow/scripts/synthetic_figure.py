"""Rule synthetic_figN: run one synthetic experiment, write its numbers, draw its figure.

The experiment itself lives in src/lejepa/synthetic/ (compute_figN, draw_figN).
"""

import inspect
import logging

import torch

from lejepa.io import send_output_to_log, write_csv
from lejepa.plots import save_figure, use_paper_style
from lejepa.synthetic import experiment

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
log = logging.getLogger("lejepa.workflow.synthetic_figure")

torch.set_num_threads(snakemake.threads)
figure = snakemake.params.figure
settings = dict(snakemake.params.settings)
compute, draw = experiment(figure)

accepted = inspect.signature(compute).parameters
unknown = sorted(set(settings) - set(accepted))
if unknown:
    raise ValueError(
        f"config/config.yaml synthetic.{figure}: unknown setting(s) {unknown}; "
        f"{compute.__module__}.{compute.__name__} takes {sorted(accepted)}"
    )

log.info("%s with settings %s on %d thread(s)", figure, settings, snakemake.threads)
data = compute(**settings)
write_csv(data, snakemake.output.csv)
log.info("wrote %d rows to %s", len(data), snakemake.output.csv)

use_paper_style()
fig = draw(data, **settings)
save_figure(fig, snakemake.output.pdf, snakemake.output.png)
log.info("wrote %s and %s", snakemake.output.pdf, snakemake.output.png)
