"""Rule pretrain: write runs/<run>/config.yaml and train (resuming from runs/<run>/checkpoint.pt if present),
then runs/<run>/provenance.json (the commit and device of the session that finished it).

One process trains in this process. Several (nodes x GPUs, or nodes x CPU tasks: the
run's resources, lejepa.launch) start through srun inside a Slurm allocation, one task
per process across the nodes, or through torchrun --standalone on one machine without
Slurm. Everything the job prints goes to its log file.
"""

import os
import shlex
import subprocess

import yaml

from lejepa.io import send_output_to_log, write_text
from lejepa.launch import job_layout, launch_command
from lejepa.tables import write_run_provenance
from lejepa.train import main, resolve_workflow_run

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

log_file = send_output_to_log(snakemake.log[0], append=True, include_stdout=True)  # a resumed run keeps its earlier log

settings, _ = resolve_workflow_run(snakemake.config, snakemake.wildcards.run)  # params: all but the execution keys
layout = job_layout(snakemake.resources, snakemake.threads)
settings["threads"] = layout.cpus_per_task
config_path = os.path.join(settings["out_dir"], "config.yaml")
write_text(yaml.safe_dump(settings, sort_keys=False), config_path)
print(
    f"run {settings['run']}: {config_path}, {layout.processes} process(es) on {layout.nodes} node(s), "
    f"{layout.gpus_per_node} GPU(s) per node, {settings['threads']} thread(s) each",
    flush=True,
)

command = launch_command(layout, config_path)
if command is None:
    main(settings)
else:
    print(f"SLURM_JOB_ID {os.environ.get('SLURM_JOB_ID', '-')}: {shlex.join(command)}", flush=True)
    subprocess.run(command, stdout=log_file, stderr=log_file, check=True)
write_run_provenance(settings["out_dir"], device=settings["device"], threads=settings["threads"])
