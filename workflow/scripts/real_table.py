"""Rule real_table: the probe results of one table's cells -> tables/<table>.csv and .md."""

from lejepa.data import dataset_label
from lejepa.io import send_output_to_log
from lejepa.tables import git_commit, read_result, read_run_info, real_table_frame, write_real_table

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
encoders = snakemake.params.encoders
frame = real_table_frame(
    snakemake.wildcards.table,
    snakemake.params.table,
    snakemake.params.cells,
    scale=snakemake.params.scale,
    read_result=read_result,
    run_info=lambda run: read_run_info(run, encoders[run]),
    dataset_label=dataset_label,
    commit=git_commit(),
)
write_real_table(frame, snakemake.params.table, csv_path=snakemake.output.csv, md_path=snakemake.output.md)
