"""Probe names and few-shot subsets, without torch.

The workflow plans with these (probe names in target paths, the few-shot subset files) on
machines that may lack torch, such as a cluster's login node; `lejepa.probe` re-exports them.
"""

from __future__ import annotations

import re
import sys
import warnings

import numpy as np

# A probe's name: <method> on all training samples, or <method>_<k>shot on k per class.
PROBE_PATTERN = r"(linear|knn|finetune)(?:_([1-9][0-9]*)shot)?"


def parse_probe_name(name: str) -> tuple[str, int | None]:
    """'linear_10shot' -> ('linear', 10); 'knn' -> ('knn', None)."""
    match = re.fullmatch(PROBE_PATTERN, name)
    if match is None:
        raise ValueError(f"probe {name!r} is not <linear|knn|finetune> or <method>_<k>shot")
    method, shots = match.groups()
    return method, int(shots) if shots else None


def few_shot_indices(labels, *, shots, seed: int) -> np.ndarray:
    """Indices (into ``labels``, the training split) of ``shots`` samples per class.

    ``shots`` is a positive int, or ``"all"`` / ``None`` for every sample. Each class present
    in ``labels`` gets a seeded random permutation (the same for every ``shots``, so the
    1-shot subset of a seed is inside its 10-shot subset); the first ``shots`` are taken.

    Rule for a class with fewer than ``shots`` samples: all of its samples are taken and a
    ``UserWarning`` names the class; callers can read the actual counts with
    ``np.bincount(labels[indices])``. Returns sorted int64 indices.
    """
    torch = sys.modules.get("torch")  # a torch tensor can only come from a process that imported torch
    labels = np.asarray(labels.cpu() if torch is not None and isinstance(labels, torch.Tensor) else labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if shots is None or shots == "all":
        return np.arange(len(labels), dtype=np.int64)
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
        raise ValueError(f"shots must be a positive integer or 'all', got {shots!r}")

    rng = np.random.default_rng(seed)
    chosen, short = [], {}
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        if len(members) < shots:
            short[int(c)] = len(members)
        chosen.append(members[:shots])
    if short:
        warnings.warn(
            f"few_shot_indices: {len(short)} class(es) have fewer than {shots} samples; all of their "
            f"samples are used (class: count) {short}",
            UserWarning,
            stacklevel=2,
        )
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def write_few_shot_file(labels_npz, path, *, shots: int, seeds, log=None) -> None:
    """Draw ``few_shot_indices`` for each seed from the labels of a split file
    (<dataset>/train.npz) and save them atomically as an npz: ``seed_<s>`` index arrays,
    ``seeds``, ``shots`` and ``counts_seed_<s>`` (samples taken per class)."""
    from lejepa.io import atomic_path

    try:
        labels = np.load(labels_npz)["labels"]
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"cannot read the labels of {labels_npz}: {error}") from error
    arrays = {"seeds": np.asarray(seeds, dtype=np.int64), "shots": np.int64(shots)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seed in seeds:
            indices = few_shot_indices(labels, shots=shots, seed=seed)
            arrays[f"seed_{seed}"] = indices
            arrays[f"counts_seed_{seed}"] = np.bincount(labels[indices], minlength=labels.max() + 1)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    if log is not None:
        lines = [f"{labels_npz}: {len(labels)} training labels; {shots} shot(s) per class; seeds {list(seeds)}"]
        lines += [str(w.message) for w in caught][:1]
        lines += [f"seed {s}: {len(arrays[f'seed_{s}'])} indices" for s in seeds]
        with open(log, "w") as f:
            f.write("\n".join(lines) + "\n")


def read_few_shot_file(path, *, seed: int) -> np.ndarray:
    """The indices of ``seed`` in a file written by ``write_few_shot_file``."""
    import zipfile

    try:
        with np.load(path) as data:
            if f"seed_{seed}" not in data:
                raise ValueError(f"{path} holds no subset for seed {seed}; it has seeds {data['seeds'].tolist()}")
            return data[f"seed_{seed}"]
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"cannot read few-shot file {path} ({type(error).__name__}: {error}): truncated or corrupted? "
            f"Delete it and rerun; the few_shot_indices rule draws the same subsets again"
        ) from error
