"""Rule results_csv: every results/<run>/<probe>/<dataset>.json -> results/all.csv."""

from lejepa.io import send_output_to_log, write_csv
from lejepa.tables import results_frame

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
write_csv(results_frame(path for path, _ in snakemake.params.results), snakemake.output.csv)
