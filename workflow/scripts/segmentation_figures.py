"""Rule segmentation_figures: a pretrained ViT and its random-init twin -> figures 14, 13 and
1 (bottom left) and figures/data/fig14.csv, fig13.csv (lejepa.segmentation_figures)."""

from pathlib import Path

import torch

from lejepa.io import send_output_to_log
from lejepa.segmentation_figures import write_segmentation_figures
from lejepa.tables import git_commit

snakemake = snakemake  # noqa: F821  (injected by Snakemake's script directive)

send_output_to_log(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
settings = snakemake.params.settings
write_segmentation_figures(
    checkpoint=snakemake.input.checkpoint,
    data_dir=str(Path(snakemake.input.meta).parent),
    split=Path(snakemake.input.images).stem,
    outputs=dict(snakemake.output),
    image_indices=settings["image_indices"],
    frame_image=settings["frame_image"],
    n_frames=settings["n_frames"],
    image_size=settings["image_size"],
    keep=settings["keep"],
    seed=settings["seed"],
    provenance={**snakemake.params.provenance, "commit": git_commit()},
)
