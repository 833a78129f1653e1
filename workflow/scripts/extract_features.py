"""Rule extract_features: frozen backbone features of one split -> features/<run>/<dataset>/<split>.pt.

Eval transform: resize + center crop at the encoder's resolution (lejepa.views.eval_transform).
A frontier model whose weights cannot be loaded gives a feature file with status
"weights unreachable: ..." and no features; the probe rule records that.
"""

import logging
import os
import sys

import torch

from lejepa.data import EncodedImages
from lejepa.devices import resolve_device
from lejepa.evaluation import checkpoint_input
from lejepa.features import (
    WeightsUnreachable,
    cached_features,
    probed_backbone,
    save_unreachable,
)
from lejepa.io import send_output_to_log
from lejepa.views import eval_transform

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
log = logging.getLogger("lejepa.workflow.extract_features")

torch.set_num_threads(snakemake.threads)
run, dataset, split = snakemake.wildcards.run, snakemake.wildcards.dataset, snakemake.wildcards.split
spec = snakemake.params.encoder
settings = snakemake.params.settings
device = resolve_device(settings["device"])
key = {"run": run, "dataset": dataset, "split": split, "kind": spec["kind"]}

try:
    backbone, info = probed_backbone(spec, checkpoint=checkpoint_input(snakemake.input.get("checkpoint")))
except WeightsUnreachable as error:
    log.info("%s: %s", run, error)
    save_unreachable(snakemake.output[0], reason=str(error), key=key)
    sys.exit(0)

key.update(resolution=info["resolution"], checkpoint_sha256=info.get("checkpoint_sha256"), seed=info.get("seed"))
images = EncodedImages(os.path.dirname(snakemake.input.meta), split, transform=eval_transform(info["resolution"]))
log.info("%s on %r at %d px, %d threads: %s", run, images, info["resolution"], snakemake.threads, info)
data = cached_features(
    snakemake.output[0],
    model=backbone,
    dataset=images,
    key=key,
    info=info,
    batch_size=settings["batch_size"],
    num_workers=settings["workers"],
    device=device,
    desc=f"{run} {dataset}/{split}",
)
log.info("wrote %s: features %s in %.1f s", snakemake.output[0], tuple(data["features"].shape), data["info"]["seconds"])
