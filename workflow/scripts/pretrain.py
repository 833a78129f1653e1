"""Rule pretrain: write runs/<run>/config.yaml and train (resuming from runs/<run>/checkpoint.pt if present),
then runs/<run>/provenance.json (the commit and device of the session that finished it).

With gpus > 1 the run goes through torchrun (DDP, one process per GPU); otherwise
it runs in this process. Everything the job prints goes to its log file.
"""

import os
import subprocess
import sys

import yaml

from lejepa.io import send_output_to_log, write_text
from lejepa.tables import write_run_provenance
from lejepa.train import main

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

log_file = send_output_to_log(snakemake.log[0], append=True, include_stdout=True)  # a resumed run keeps its earlier log

settings = dict(snakemake.params.settings)
gpus = int(snakemake.resources.get("gpu", 0))
processes = max(1, gpus)
settings["threads"] = max(1, snakemake.threads // processes)
config_path = os.path.join(settings["out_dir"], "config.yaml")
write_text(yaml.safe_dump(settings, sort_keys=False), config_path)
print(
    f"run {settings['run']}: {config_path}, {processes} process(es), {settings['threads']} thread(s) each", flush=True
)

if processes > 1:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        "lejepa.train",
        "--config",
        config_path,
    ]
    subprocess.run(command, stdout=log_file, stderr=log_file, check=True)
else:
    main(settings)
write_run_provenance(settings["out_dir"], device=settings["device"], threads=settings["threads"])
