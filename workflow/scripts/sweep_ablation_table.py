"""Rule ablation_table: the probe results of a sweep with parts -> tables/<sweep>.csv and .md (table 1)."""

from lejepa.data import dataset_label
from lejepa.io import send_output_to_log, write_csv, write_text
from lejepa.sweeps import ablation_frame, ablation_markdown
from lejepa.tables import git_commit, read_result, read_run_info

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
frame = ablation_frame(
    snakemake.params.sweep,
    snakemake.params.cells,
    scale=snakemake.params.scale,
    read_result=read_result,
    run_info=lambda run: read_run_info(run, {"kind": "pretrained"}),
    dataset_label=dataset_label,
    commit=git_commit(),
    budget=snakemake.params.budget,
)
write_csv(frame, snakemake.output.csv)
write_text(ablation_markdown(frame, snakemake.params.sweep), snakemake.output.md)
