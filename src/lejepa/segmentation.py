"""What a ViT's last layer sees: figures 14, 13 and 1 (bottom left) of the paper.

Figure 14 (and figure 1, bottom left): the last layer's patch features of one image,
projected on their own first 3 principal components and shown as RGB (each component
min-max scaled to [0, 1]); the paper finds the foreground and the background in
different colours. Figure 13: the [CLS] token's attention in the last block, thresholded
into a foreground mask, along the frames of a video. We have no video: the frames are a
sequence of photometric augmentations of one image (DINO's colour jitter, grayscale,
blur, solarisation; the geometry is kept, so the masks of the frames can be compared
patch by patch), and the figures say so.

The mask keeps, as DINO's visualisation does, the fewest patches that hold a fraction
`keep` of the attention mass (DINO: 0.6): the [CLS] attention over the patches is
averaged over heads and renormalised over the patches first (register tokens and the
[CLS] token itself are left out).

Every function takes the output of `lejepa.models.last_block_attention`.
"""

from __future__ import annotations

import random

import torch

from lejepa.models import last_block_attention
from lejepa.views import IMAGENET_MEAN, IMAGENET_STD, ViewSpec, augment, sample_view

__all__ = ["attention_mass_mask", "augmented_frames", "mask_iou", "patch_attention", "pca_rgb", "segment_images"]


def pca_rgb(patch_tokens: torch.Tensor, *, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's patch features (h * w, D) -> (RGB image (h, w, 3) in [0, 1], explained variance
    ratio of the 3 components (3,)).

    The features are centred, projected on their first 3 principal directions (the right
    singular vectors of the centred matrix), and each projection is min-max scaled to [0, 1].
    The sign of a component is arbitrary; it is fixed so that its largest loading is positive
    (scikit-learn's svd_flip), so the colours do not flip between runs.
    """
    x = patch_tokens.double()
    x = x - x.mean(dim=0)  # (N, D)
    _, singular, vh = torch.linalg.svd(x, full_matrices=False)  # vh: (min(N, D), D)
    directions = vh[:3]  # (3, D)
    biggest = directions.abs().argmax(dim=1)
    directions = directions * torch.sign(directions[torch.arange(3), biggest])[:, None]
    projected = x @ directions.T  # (N, 3)
    low, high = projected.min(dim=0).values, projected.max(dim=0).values
    rgb = (projected - low) / (high - low).clamp_min(1e-12)
    explained = singular[:3] ** 2 / (singular**2).sum()
    return rgb.view(*grid, 3).float(), explained.float()


def patch_attention(cls_attention: torch.Tensor, *, num_prefix: int) -> torch.Tensor:
    """[CLS] attention (B, heads, T) over every token -> (B, N) over the patches only: the mean
    over heads, renormalised to sum to 1 over the N = T - num_prefix patches."""
    over_patches = cls_attention[:, :, num_prefix:].mean(dim=1)  # (B, N)
    return over_patches / over_patches.sum(dim=-1, keepdim=True)


def attention_mass_mask(attention: torch.Tensor, *, keep: float = 0.6) -> torch.Tensor:
    """Attention (..., N) summing to 1 over N -> bool mask (..., N) of the fewest patches whose
    attention adds up to at least `keep` (the largest ones; DINO's threshold, keep = 0.6)."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep!r}")
    values, order = attention.sort(dim=-1, descending=True)
    mass_before = values.cumsum(dim=-1) - values  # mass of the larger patches before each one
    kept_sorted = mass_before < keep - 1e-9  # a patch is needed while the mass before it is short of `keep`
    return torch.zeros_like(kept_sorted).scatter(-1, order, kept_sorted)


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """Intersection over union of two bool masks of the same shape (1.0 when both are empty)."""
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union


def augmented_frames(image: torch.Tensor, *, n_frames: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The stand-in for a video: uint8 image (3, H, W) -> (frames for the encoder (n, 3, size, size),
    normalised; the same for display (n, 3, size, size) in [0, 1]). Frame 0 is the image itself;
    the others draw DINO's photometric augmentations (lejepa.views, the second global view's
    probabilities) from random.Random(seed), with no crop and no flip."""
    whole = torch.nn.functional.interpolate(
        image[None].float().div(255), size=(size, size), mode="bicubic", antialias=True, align_corners=False
    ).clamp(0, 1)  # (1, 3, size, size)
    rng = random.Random(seed)
    spec = ViewSpec(size, (1.0, 1.0), blur_p=0.5, solarize_p=0.2)
    params = [sample_view(rng, size, size, spec)._replace(crop=(0, 0, size, size), flip=False) for _ in range(n_frames)]
    params[0] = params[0]._replace(jitter=False, gray=False, blur_sigma=0.0, solarize=False)
    frames = augment(whole.repeat(n_frames, 1, 1, 1), params, size=size, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return frames, denormalise(frames)


def denormalise(images: torch.Tensor) -> torch.Tensor:
    """Images normalised with the ImageNet mean and std, (..., 3, H, W) -> the same in [0, 1]."""
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (images * std + mean).clamp(0, 1)


@torch.no_grad()
def segment_images(backbone: torch.nn.Module, images: torch.Tensor, *, keep: float = 0.6) -> list[dict]:
    """Normalised images (B, 3, H, W) through a ViT backbone -> one dict per image: rgb (h, w, 3),
    explained (3,), attention (h, w) over the patches, mask (h, w) bool, grid (h, w)."""
    out = last_block_attention(backbone.eval(), images)
    grid = out["grid"]
    attention = patch_attention(out["cls_attention"], num_prefix=out["num_prefix"])  # (B, N)
    masks = attention_mass_mask(attention, keep=keep)
    results = []
    for tokens, weights, mask in zip(out["patch_tokens"], attention, masks):
        rgb, explained = pca_rgb(tokens, grid=grid)
        results.append(
            {"rgb": rgb, "explained": explained, "attention": weights.view(grid), "mask": mask.view(grid), "grid": grid}
        )
    return results
