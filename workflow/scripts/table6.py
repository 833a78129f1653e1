"""Rule table6: time SIGReg forward + backward over the configured grid, beside the paper's V100."""

import logging
import os
import platform

import torch

from lejepa import tables
from lejepa.devices import resolve_device
from lejepa.io import send_output_to_log
from lejepa.timing import time_grid

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
log = logging.getLogger("lejepa.workflow.table6")

torch.set_num_threads(snakemake.threads)
settings = snakemake.params.settings
device = resolve_device(settings["device"])
if device == "cuda" and not torch.cuda.is_available():
    raise ValueError("config/config.yaml table6.device is 'cuda' but torch sees no CUDA device")
log.info("host %s, SLURM_JOB_ID %s, device %s", platform.node(), os.environ.get("SLURM_JOB_ID", "-"), device)

baseline = settings.get("baseline", "algorithm1")
measurements = time_grid(settings["grid"], impl=settings["impl"], baseline=baseline, repeats=settings["repeats"],
                         warmup=settings["warmup"], device=device, log=log,
                         max_mem_mb=snakemake.resources.mem_mb)  # fmt: skip

frame = tables.table6_frame(
    measurements,
    device=tables.device_name(device, threads=snakemake.threads),
    impl=settings["impl"],
    repeats=settings["repeats"],
    commit=tables.git_commit(),
    torch_version=torch.__version__,
)
if baseline != "none":
    frame["baseline"] = baseline
    for key in ("mean_ms", "std_ms", "peak_mem_mb"):
        frame[f"baseline_{key}"] = [measurement[f"baseline_{key}"] for measurement in measurements]
frame["command"] = f"snakemake --cores {snakemake.threads} {snakemake.output.csv}"
tables.write_table6(frame, csv_path=snakemake.output.csv, md_path=snakemake.output.md)
