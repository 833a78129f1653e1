"""The `device` setting of the config files (auto | cpu | cuda) resolved to a device."""

from __future__ import annotations

import torch


def resolve_device(setting: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cpu' and 'cuda' stay as they are.

    Args:
        setting: auto, cpu or cuda (the configs' schemas allow nothing else).

    Returns:
        'cpu' or 'cuda'.
    """
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {setting!r}")
    return setting
