"""Reference computations and fixtures' building blocks shared by several test files."""

import shutil
from pathlib import Path

import numpy as np

from lejepa.data.format import (
    encode_jpeg,
    sha256_of,
    split_file,
    write_meta,
    write_split,
)

REPO = Path(__file__).resolve().parents[1]


def epps_pulley_numpy(x, t_max=3.0, knots=17):
    """Official Epps-Pulley per column of x (N, M), direct cos/sin in float64."""
    t = np.linspace(0, t_max, knots)
    dt = t_max / (knots - 1)
    weights = np.full(knots, 2 * dt)
    weights[[0, -1]] = dt
    phi = np.exp(-(t**2) / 2)
    angles = x[:, :, None] * t
    err = (np.cos(angles).mean(0) - phi) ** 2 + np.sin(angles).mean(0) ** 2
    return x.shape[0] * err @ (weights * phi)


def write_tiny_dataset(root: Path, *, classes: int) -> Path:
    """<root>: 96 train / 32 test 20-px JPEGs in the prepared-dataset format; the class
    sets the dominant colour."""
    rng = np.random.default_rng(0)
    meta = {"name": root.name, "classes": [f"class{i}" for i in range(classes)], "splits": {}, "sha256": {}}
    for split, n in (("train", 96), ("test", 32)):
        samples = []
        for label in rng.integers(0, classes, n):
            image = rng.integers(0, 60, (20, 20, 3)).astype(np.uint8)
            image[..., label % 3] += 150
            samples.append((encode_jpeg(image), int(label)))
        write_split(split_file(root, split), samples)
        meta["splits"][split] = n
        meta["sha256"][f"{split}.npz"] = sha256_of(split_file(root, split))
    write_meta(meta, root)
    return root


def copy_workflow(copy: Path) -> Path:
    """The workflow's files (no outputs, no .snakemake) copied into ``copy``."""
    copy.mkdir()
    for name in ("Snakefile", "environment.yml"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, copy / name)
    for name in ("workflow", "config", "slurm"):
        shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    return copy
