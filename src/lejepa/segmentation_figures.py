"""Figures 14, 13 and 1 (bottom left): a pretrained ViT beside its random-init twin
(lejepa.segmentation computes, this module loads, draws and writes).

    write_segmentation_figures(checkpoint="runs/<run>/final.pt", data_dir="data/flowers102",
                               split="test", outputs={...}, image_indices=[0, 1, 2], ...)
"""

from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as F

from lejepa.data import EncodedImages
from lejepa.features import random_init_encoder
from lejepa.io import write_csv
from lejepa.models import load_encoder
from lejepa.plots import plt, save_figure, use_paper_style
from lejepa.segmentation import augmented_frames, denormalise, mask_iou, segment_images
from lejepa.views import eval_transform

MODELS = ("lejepa", "random_init")
MODEL_LABELS = {"lejepa": "LeJEPA", "random_init": "random init"}


def to_display(image: torch.Tensor) -> torch.Tensor:
    """Normalised (3, H, W) -> (H, W, 3) in [0, 1]."""
    return denormalise(image).permute(1, 2, 0)


def upsample(patch_map: torch.Tensor, size: int) -> torch.Tensor:
    """(h, w) or (h, w, C) patch map -> (size, size[, C]), nearest, for overlays."""
    x = patch_map.float()
    x = x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]
    x = F.interpolate(x, size=(size, size), mode="nearest")[0]
    return x[0] if patch_map.ndim == 2 else x.permute(1, 2, 0)


def attention_entropy(attention: torch.Tensor) -> float:
    """Entropy of the patch attention divided by log N (1: uniform over the N patches)."""
    p = attention.flatten().clamp_min(1e-12)
    return float(-(p * p.log()).sum() / math.log(p.numel()))


def encoders(checkpoint, *, seed: int) -> tuple[dict, dict]:
    """{'lejepa': pretrained backbone, 'random_init': same architecture, seed `seed`}, run config."""
    encoder, run_config = load_encoder(checkpoint)
    return {"lejepa": encoder.backbone, "random_init": random_init_encoder(run_config, seed=seed).backbone}, run_config


def _finish_grid(fig, axes, row_labels, title: str):
    """Label each row of an image grid, drop the ticks, title it."""
    for row, label in enumerate(row_labels):
        axes[row, 0].set_ylabel(label)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, y=1.04)
    return fig


def draw_fig14(images, results, *, title: str):
    """Columns: images; rows: the image, then each model's PCA of its last-layer patch features."""
    use_paper_style()
    n = len(images)
    fig, axes = plt.subplots(1 + len(MODELS), n, figsize=(1.5 * n, 1.5 * (1 + len(MODELS))), squeeze=False)
    for column, image in enumerate(images):
        axes[0, column].imshow(to_display(image))
        for row, model in enumerate(MODELS, start=1):
            axes[row, column].imshow(results[model][column]["rgb"].numpy(), interpolation="nearest")
    return _finish_grid(fig, axes, ["image", *(f"{MODEL_LABELS[m]}\nPCA 1-3 as RGB" for m in MODELS)], title)


def draw_fig13(frames_display, results, *, title: str):
    """Columns: frames; rows: the frame, then each model's [CLS]-attention mask over it."""
    use_paper_style()
    n, size = len(frames_display), frames_display.shape[-1]
    fig, axes = plt.subplots(1 + len(MODELS), n, figsize=(1.5 * n, 1.5 * (1 + len(MODELS))), squeeze=False)
    for column, frame in enumerate(frames_display):
        image = frame.permute(1, 2, 0)
        axes[0, column].imshow(image)
        axes[0, column].set_title(f"frame {column}")
        for row, model in enumerate(MODELS, start=1):
            mask = upsample(results[model][column]["mask"], size)[..., None]
            axes[row, column].imshow(image * (0.2 + 0.8 * mask))
    return _finish_grid(fig, axes, ["augmented frame", *(f"{MODEL_LABELS[m]}\n[CLS] mask" for m in MODELS)], title)


def draw_fig1_bottom_left(image, result, *, title: str):
    """One image and the PCA of the pretrained ViT's patch features (figure 14's first column)."""
    use_paper_style()
    fig, axes = plt.subplots(1, 2, figsize=(3.2, 1.8))
    axes[0].imshow(to_display(image))
    axes[1].imshow(result["rgb"].numpy(), interpolation="nearest")
    axes[0].set_title("image")
    axes[1].set_title("last-layer PCA")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, y=1.04)
    return fig


def write_segmentation_figures(
    *, checkpoint, data_dir, split: str, outputs: dict, image_indices: list[int], frame_image: int, n_frames: int,
    image_size: int | None, keep: float, seed: int, provenance: dict,
) -> None:  # fmt: skip
    """Compute and write figures 14, 13 and 1 (bottom left) and their CSVs.

    outputs: fig14, fig13, fig1_bottom_left (PDFs; a .png beside each) and fig14_csv, fig13_csv.
    provenance: run, scale, dataset, epochs, commit (columns of the CSVs and the titles).
    """
    backbones, run_config = encoders(checkpoint, seed=seed)
    size = image_size or int(run_config["global_size"])
    dataset = EncodedImages(data_dir, split, transform=eval_transform(size))
    images = torch.stack([dataset[i][0] for i in image_indices])  # (n, 3, size, size)
    raw_image, _ = EncodedImages(data_dir, split)[frame_image]
    frames, frames_display = augmented_frames(raw_image, n_frames=n_frames, size=size, seed=seed)

    still = {model: segment_images(backbone, images, keep=keep) for model, backbone in backbones.items()}
    clip = {model: segment_images(backbone, frames, keep=keep) for model, backbone in backbones.items()}

    common = {**provenance, "backbone": run_config["backbone"], "image_size": size, "seed": seed}
    rows14 = [
        {"image_index": index, "model": model, **{f"explained_{k + 1}": float(r["explained"][k]) for k in range(3)},
         "grid": "x".join(map(str, r["grid"])), **common}
        for model in MODELS for index, r in zip(image_indices, still[model])
    ]  # fmt: skip
    rows13 = [
        {"frame": frame, "image_index": frame_image, "model": model, "keep": keep,
         "kept_fraction": float(r["mask"].float().mean()),
         "iou_with_frame_0": mask_iou(r["mask"], clip[model][0]["mask"]),
         "attention_entropy": attention_entropy(r["attention"]), **common}
        for model in MODELS for frame, r in enumerate(clip[model])
    ]  # fmt: skip
    write_csv(pd.DataFrame(rows14), outputs["fig14_csv"])
    write_csv(pd.DataFrame(rows13), outputs["fig13_csv"])

    where = f"{run_config['backbone']}, {provenance['dataset']}, {provenance['epochs']} epochs ({provenance['scale']})"
    figures = {
        "fig14": draw_fig14(images, still, title=f"Figure 14: last-layer PCA, {where}"),
        "fig13": draw_fig13(
            frames_display, clip, title=f"Figure 13: [CLS] attention keeping {keep:.0%} of its mass, {where};\n"
            f"frames: photometric augmentations of one image (no video)",
        ),
        "fig1_bottom_left": draw_fig1_bottom_left(images[0], still["lejepa"][0], title=where),
    }  # fmt: skip
    for name, fig in figures.items():
        save_figure(fig, outputs[name], str(outputs[name]).removesuffix(".pdf") + ".png")
