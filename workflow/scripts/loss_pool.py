"""Rule loss_pool: every run's probe result and metrics.csv -> tables/loss_pool.csv."""

from lejepa.io import send_output_to_log, write_csv
from lejepa.sweeps import pool_frame
from lejepa.tables import read_result

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
entries = list(snakemake.params.swept) + list(snakemake.params.others)
write_csv(pool_frame(entries, read_result=read_result), snakemake.output.csv)
