"""A generated toy dataset in the prepared format, to try training without downloading anything.

    python -m lejepa.toy_dataset data/toy          # data/toy/{train,test}.npz + meta.json
    python -m lejepa.train --config config/examples/train_tiny.yaml

Each image (32 x 32 px, JPEG) is noise with a bright square; the class (4 by default) sets
the square's colour channel and its quadrant. Seeded: the same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lejepa.data.format import encode_jpeg, sha256_of, split_file, write_meta, write_split

SIZES = {"train": 512, "test": 128}


def toy_image(rng: np.random.Generator, label: int, side: int) -> np.ndarray:
    """uint8 (side, side, 3): noise, and a square of the class's channel in the class's quadrant."""
    image = rng.integers(0, 80, (side, side, 3)).astype(np.uint8)
    half = side // 2
    y, x = divmod(label % 4, 2)
    size = int(rng.integers(half // 2, half + 1))
    top = y * half + int(rng.integers(0, half - size + 1))
    left = x * half + int(rng.integers(0, half - size + 1))
    image[top : top + size, left : left + size, label % 3] += 170
    return image


def write_toy_dataset(root, *, classes: int = 4, sizes: dict | None = None, side: int = 32, seed: int = 0) -> Path:
    """Write the toy dataset to ``root`` (meta.json last, so a cut-short write is not taken for a
    prepared dataset) and return it."""
    root = Path(root)
    sizes = dict(SIZES if sizes is None else sizes)
    rng = np.random.default_rng(seed)
    meta = {"name": root.name, "label": f"{root.name} (generated: lejepa.toy_dataset)",
            "classes": [f"class{i}" for i in range(classes)], "splits": {}, "sha256": {}}  # fmt: skip
    for split, count in sizes.items():
        labels = np.arange(count) % classes
        write_split(split_file(root, split), ((encode_jpeg(toy_image(rng, int(c), side)), int(c)) for c in labels))
        meta["splits"][split] = count
        meta["sha256"][f"{split}.npz"] = sha256_of(split_file(root, split))
    write_meta(meta, root)
    return root


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", help="the folder to write, e.g. data/toy")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--train", type=int, default=SIZES["train"], help="training images")
    parser.add_argument("--test", type=int, default=SIZES["test"], help="test images")
    arguments = parser.parse_args()
    root = write_toy_dataset(arguments.root, classes=arguments.classes,
                             sizes={"train": arguments.train, "test": arguments.test})  # fmt: skip
    print(f"wrote {root}: {arguments.train} train and {arguments.test} test images, {arguments.classes} classes")
