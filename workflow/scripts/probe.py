"""Rule probe: one probe of one encoder on one dataset -> results/<run>/<probe>/<dataset>.json
(lejepa.evaluation.probe_result)."""

import json
import logging

import torch

from lejepa.evaluation import checkpoint_input, probe_result
from lejepa.io import send_output_to_log, write_text

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
log = logging.getLogger("lejepa.workflow.probe")

torch.set_num_threads(snakemake.threads)
result = probe_result(
    snakemake.wildcards.probe,
    run=snakemake.wildcards.run,
    dataset=snakemake.wildcards.dataset,
    dataset_label=snakemake.params.dataset_label,
    encoder=snakemake.params.encoder,
    settings=snakemake.params.settings,
    feature_files={name: snakemake.input[name] for name in ("train", "val", "test") if name in snakemake.input.keys()},
    checkpoint=checkpoint_input(snakemake.input.get("checkpoint")),
    few_shot_file=snakemake.input.get("few_shot"),
)
write_text(json.dumps(result, indent=1) + "\n", snakemake.output[0])
log.info("wrote %s: %s", snakemake.output[0], {k: result.get(k) for k in ("status", "accuracy", "std")})
