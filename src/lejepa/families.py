"""Backbone families, and the training settings that depend on the family.

Torch-free, so the workflow resolves a run's settings without torch.

Two settings differ between ViTs and other backbones:

- ``centers``, the views whose mean every view predicts. The paper's algorithm 2 (arXiv
  2511.08544): "For non-ViT architectures (e.g., ResNet), set global_views = all_views";
  ViTs predict the mean of the global views. ``auto`` follows it.
- ``weight_decay``. The official repository's README (rbalestr-lab/lejepa, "Training
  Configuration"): AdamW weight decay 5e-2 for Vision Transformers, 5e-4 for ResNets.
  config/pretrain.yaml gives it as ``{vit: 5.0e-2, other: 5.0e-4}``.

A "ViT" here is a transformer backbone, told by its timm name (``VIT_PREFIXES``: ViT, DeiT,
EVA, BEiT, CaiT, XCiT, FlexiViT, Swin, PiT, LeViT, CrossViT); every other backbone (ResNets,
ResNeXts, ConvNeXts, ...) is "other".
"""

from __future__ import annotations

__all__ = ["VIT_PREFIXES", "centers_for", "is_vit", "resolve_family_settings", "weight_decay_for"]

VIT_PREFIXES = ("vit", "deit", "eva", "beit", "cait", "xcit", "flexivit", "swin", "pit_", "levit", "crossvit")


def is_vit(backbone: str) -> bool:
    """Whether a timm backbone name is a transformer (ViT, DeiT, EVA, BEiT, Swin, ...).

    Examples:

        >>> is_vit("vit_large_patch14_224"), is_vit("swin_tiny_patch4_window7_224"), is_vit("resnet18")
        (True, True, False)
    """
    return backbone.lower().startswith(VIT_PREFIXES)


def centers_for(centers: str, backbone: str) -> str:
    """The views whose mean every view predicts, ``"global"`` or ``"all"``.

    Args:
        centers:
            ``"auto"`` (algorithm 2: every view for a non-ViT backbone, the global views for a
            ViT), ``"global"`` or ``"all"``.
        backbone:
            timm model name (read by ``"auto"`` only).
    """
    if centers == "auto":
        return "global" if is_vit(backbone) else "all"
    if centers not in ("global", "all"):
        raise ValueError(f"centers must be 'auto', 'global' or 'all', got {centers!r}")
    return centers


def weight_decay_for(weight_decay, backbone: str) -> float:
    """A number, or ``{vit: x, other: y}`` -> the number for this backbone's family."""
    if isinstance(weight_decay, dict):
        if set(weight_decay) != {"vit", "other"}:
            raise ValueError(f"weight_decay as a mapping needs the keys vit and other, got {weight_decay!r}")
        weight_decay = weight_decay["vit" if is_vit(backbone) else "other"]
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a number >= 0 or {{vit: x, other: y}}, got {weight_decay!r}")
    return weight_decay


def resolve_family_settings(config: dict) -> dict:
    """The config with ``centers`` and ``weight_decay`` resolved for its ``backbone`` (a copy)."""
    return {
        **config,
        "centers": centers_for(config["centers"], config["backbone"]),
        "weight_decay": weight_decay_for(config["weight_decay"], config["backbone"]),
    }
