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


def resolve_workers(setting: int | str, *, device: str, threads: int) -> int:
    """The `workers` setting (DataLoader worker processes) resolved for a device.

    'auto' is 0 on a CPU: the model needs every core, and a worker process competing with
    its threads costs more than the batched augmentation takes in the training process
    itself (bench/results/pipeline.txt). On a GPU the training process mostly waits for the
    GPU, so 'auto' is one worker per CPU thread of the process.

    Args:
        setting: a number of workers (>= 0) or 'auto'.
        device: the resolved device, 'cpu' or 'cuda' (``resolve_device``).
        threads: the process's CPU threads (the rule's threads, or cpus_per_task).

    Returns:
        The number of worker processes.
    """
    if setting == "auto":
        return 0 if device == "cpu" else max(1, threads)
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 0:
        raise ValueError(f"workers must be auto or a number >= 0, got {setting!r}")
    return setting
