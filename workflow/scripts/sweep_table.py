"""Rule sweep_table: the probe results of a sweep's cells -> tables/<sweep>.csv and .md (table 7)."""

from lejepa.data import dataset_label
from lejepa.io import send_output_to_log, write_csv, write_text
from lejepa.sweeps import sweep_table_frame, sweep_table_markdown
from lejepa.tables import git_commit, read_result, read_run_info

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
frame = sweep_table_frame(
    snakemake.params.sweep,
    snakemake.params.cells,
    scale=snakemake.params.scale,
    read_result=read_result,
    run_info=lambda run: read_run_info(run, {"kind": "pretrained"}),
    dataset_label=dataset_label,
    commit=git_commit(),
)
write_csv(frame, snakemake.output.csv)
write_text(sweep_table_markdown(frame, snakemake.params.sweep), snakemake.output.md)
