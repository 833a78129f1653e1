"""Datasets: a registry of names, one on-disk format, and `prepare`, which fills it from a source.

    from lejepa.data import DATASETS, EncodedImages, prepare, verify
    root = prepare("cifar10", out_dir="data")            # data/cifar10/{train,test}.npz + meta.json
    train = EncodedImages(root, "train", transform=views)  # (views(uint8 (3, H, W)), label)

registry.py  what each name means (classes, splits, sources, stand-in labels)
format.py    the npz + meta.json format, `verify` (torch-free)
sources.py   mirror / download / user-supplied sources and `prepare`
images.py    `EncodedImages` (torch; the rest of the package loads without torch)
"""

from lejepa.data.format import SPLIT_NAMES, DatasetError, verify
from lejepa.data.registry import DATASETS, DatasetSpec, dataset_label, get_spec, prepare_settings
from lejepa.data.sources import SourceUnavailable, host_unreachable, prepare, unavailable_reason


def __getattr__(name):
    # EncodedImages needs torch: imported on first use, so the rest loads without it.
    if name == "EncodedImages":
        from lejepa.data.images import EncodedImages

        return EncodedImages
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "SPLIT_NAMES",
    "DatasetError",
    "DatasetSpec",
    "EncodedImages",
    "dataset_label",
    "SourceUnavailable",
    "get_spec",
    "host_unreachable",
    "prepare",
    "prepare_settings",
    "unavailable_reason",
    "verify",
]
