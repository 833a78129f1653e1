"""`EncodedImages`: the images of one prepared split as a torch Dataset (decoded on access).

Kept apart from lejepa.data.format, which reads and writes the format without torch
(the workflow plans with it on machines that may lack torch); format re-exports it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_jpeg

from lejepa.data.format import DatasetError, _memmap_member, meta_file, read_meta, read_split, split_file


class EncodedImages(Dataset):
    """The images of one split, decoded on access: `dataset[i] -> (transform(img) or img, label)`.

    `img` is a uint8 tensor (3, H, W), RGB. The JPEG array is memory-mapped lazily, in the
    process that first reads an image, so the dataset pickles cheaply into DataLoader workers.
    """

    def __init__(self, root, split: str, transform=None):
        self.root = Path(root)
        self.split = split
        self.transform = transform
        self.meta = read_meta(self.root)
        if split not in self.meta["splits"]:
            raise DatasetError(f"{meta_file(self.root)}: no split {split!r}; it has {sorted(self.meta['splits'])}")
        self.classes: list[str] = list(self.meta["classes"])
        self.path = split_file(self.root, split)
        jpeg, self.offsets, self.labels = read_split(self.path)
        if len(self.offsets) != len(self.labels) + 1 or self.offsets[-1] != len(jpeg):
            raise DatasetError(f"{self.path}: offsets do not match labels and jpeg bytes; truncated or corrupted?")
        self._jpeg = None  # opened on first access, in each worker

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        if self._jpeg is None:
            self._jpeg = _memmap_member(self.path, "jpeg")
        data = np.array(self._jpeg[self.offsets[index] : self.offsets[index + 1]])  # copy: torch wants writable memory
        try:
            image = decode_jpeg(torch.from_numpy(data), mode=ImageReadMode.RGB)
        except RuntimeError as error:
            raise DatasetError(f"{self.path}: image {index} cannot be decoded ({error})") from error
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_jpeg"] = None  # a memmap would pickle as a full copy of the bytes
        return state

    def __repr__(self) -> str:
        return f"EncodedImages({str(self.root)!r}, {self.split!r}: {len(self)} images, {len(self.classes)} classes)"
