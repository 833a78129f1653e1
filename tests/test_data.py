"""Datasets: the npz format, verification, every kind of source, and the prepare rule.

References are independent of the code under test: numpy's np.load and PIL for reading,
hashlib for checksums, ../shared/datasets/verify.py for the format, torchvision's own class
attributes for the md5 sums, and images whose pixels the test chose.
"""

import dataclasses
import hashlib
import io
import json
import pickle
import re
import subprocess
import sys
import urllib.error
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torchvision
import yaml
from PIL import Image

from lejepa.data import (
    DATASETS,
    SPLIT_NAMES,
    DatasetError,
    EncodedImages,
    SourceUnavailable,
    dataset_label,
    prepare,
    prepare_settings,
    verify,
)
from lejepa.data.format import encode_jpeg, write_meta, write_split

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "datasets"
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")  # torchvision 0.29


@pytest.fixture
def mirror(require_shared) -> Path:
    """The offline dataset mirror ../shared/datasets (with DTD in it)."""
    require_shared("datasets/dtd/meta.json", "the offline dataset mirror, DTD in it")
    return MIRROR


def smooth_image(seed: int, height: int = 24, width: int = 32) -> np.ndarray:
    """A smooth colour gradient (JPEG reproduces it to within a few grey levels)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [rng.uniform(40, 200) + rng.uniform(-50, 50) * x + rng.uniform(-50, 50) * y for _ in range(3)]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_dataset(root: Path, splits: dict, classes: list) -> None:
    """A dataset in the format, from {split: (list of jpeg bytes, labels)}."""
    for split, (encoded, labels) in splits.items():
        write_split(root / f"{split}.npz", zip(encoded, labels))
    write_meta(
        {
            "name": root.name,
            "classes": classes,
            "splits": {split: len(labels) for split, (_, labels) in splits.items()},
            "sha256": {f"{split}.npz": sha256(root / f"{split}.npz") for split in splits},
        },
        root,
    )


def use_spec(monkeypatch, name, **changes):
    """Run a test against a registry entry with some fields changed (e.g. sizes of a tiny source)."""
    monkeypatch.setitem(DATASETS, name, dataclasses.replace(DATASETS[name], **changes))


@pytest.fixture
def tiny(tmp_path):
    """Six known images (24 x 32) with known labels, written in the format."""
    images = [smooth_image(i) for i in range(6)]
    labels = [3, 0, 2, 2, 1, 3]
    encoded = [encode_jpeg(image) for image in images]
    root = tmp_path / "tiny"
    write_dataset(root, {"train": (encoded, labels)}, ["a", "b", "c", "d"])
    return root, images, labels, encoded


# ---------------------------------------------------------------- format


def test_written_split_reads_back_with_numpy_and_decodes_to_the_encoded_pixels(tiny):
    root, images, labels, encoded = tiny
    with np.load(root / "train.npz") as arrays:  # numpy's own reader
        assert sorted(arrays.files) == ["jpeg", "labels", "offsets"]
        assert (
            arrays["jpeg"].dtype == np.uint8
            and arrays["offsets"].dtype == np.int64
            and arrays["labels"].dtype == np.int64
        )
        assert arrays["jpeg"].tobytes() == b"".join(encoded)
        assert arrays["offsets"].tolist() == np.cumsum([0] + [len(e) for e in encoded]).tolist()
        assert arrays["labels"].tolist() == labels

    dataset = EncodedImages(root, "train")
    assert len(dataset) == 6 and dataset.classes == ["a", "b", "c", "d"] and dataset.split == "train"
    assert dataset.labels.tolist() == labels
    for i, original in enumerate(images):
        image, label = dataset[i]
        assert label == labels[i] and isinstance(label, int)
        assert image.dtype == torch.uint8 and image.shape == (3, 24, 32)
        decoded = image.permute(1, 2, 0).numpy().astype(int)
        assert np.abs(decoded - original).mean() < 2.0  # JPEG quality 95 on a smooth image
        by_pil = np.asarray(Image.open(io.BytesIO(encoded[i])).convert("RGB"), dtype=int)
        assert np.abs(decoded - by_pil).max() <= 2  # another decoder agrees


def test_encoded_images_applies_transform_and_pickles_without_the_jpeg_bytes(tiny):
    root, _, labels, encoded = tiny
    dataset = EncodedImages(root, "train", transform=lambda image: image.float().mean())
    value, label = dataset[1]
    assert value.ndim == 0 and label == labels[1]
    plain = EncodedImages(root, "train")
    plain[0]  # opens the memory map
    assert len(pickle.dumps(plain)) < sum(len(e) for e in encoded)
    clone = pickle.loads(pickle.dumps(plain))
    assert torch.equal(clone[5][0], plain[5][0])


def test_grayscale_jpeg_decodes_as_rgb(tmp_path):
    gray = smooth_image(0)[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(gray, mode="L").save(buffer, format="JPEG", quality=95)
    write_dataset(tmp_path / "g", {"test": ([buffer.getvalue()], [0])}, ["x"])
    image, _ = EncodedImages(tmp_path / "g", "test")[0]
    assert image.shape == (3, 24, 32)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_shared_verify_script_accepts_our_files(tiny, require_shared):
    require_shared("datasets/verify.py", "the mirror's own format check")
    result = subprocess.run([sys.executable, str(MIRROR / "verify.py"), str(tiny[0])], capture_output=True, text=True)
    assert "VERIFY OK" in result.stdout, result.stdout + result.stderr


def test_verify_passes_and_checksum_mismatch_names_the_file(tiny):
    root = tiny[0]
    assert verify(root)["splits"] == {"train": 6}
    path = root / "train.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=re.escape(str(path)) + ".*sha256"):
        verify(root)


def test_truncated_npz_names_the_file(tiny):
    root = tiny[0]
    path = root / "train.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError, match=re.escape(str(path))):
        verify(root)
    with pytest.raises(DatasetError, match=re.escape(str(path))):
        EncodedImages(root, "train")


def test_unknown_split_and_missing_meta_are_named(tiny, tmp_path):
    with pytest.raises(DatasetError, match="no split 'val'"):
        EncodedImages(tiny[0], "val")
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "nothing" / "meta.json"))):
        EncodedImages(tmp_path / "nothing", "train")


# ---------------------------------------------------------------- registry


def test_registry_has_every_dataset_with_consistent_splits():
    expected = {
        "cifar10",
        "cifar100",
        "flowers102",
        "food101",
        "dtd",
        "pets",
        "aircraft",
        "cars",
        "stl10",
        "galaxy10",
        "imagenet",
        "imagenet100",
        "imagenet10",
        "tinyimagenet100",
        "tinyimagenet10",
        "dtd10",
        "food10",
    }
    assert expected <= set(DATASETS)
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert set(spec.splits) <= set(SPLIT_NAMES)
        assert spec.train_split in spec.splits and spec.test_split in spec.splits
        assert spec.val_split is None or spec.val_split in spec.splits
        assert set(spec.sizes) <= set(spec.splits)
        assert spec.download is not None or spec.mirror is not None, name
        if spec.stand_in_for:
            assert spec.label == dataset_label(name) == f"{name} (stand-in for {spec.stand_in_for})"
        else:
            assert spec.label == dataset_label(name) == name
    assert dataset_label("not_a_registered_dataset") == "not_a_registered_dataset"
    assert {name for name, spec in DATASETS.items() if spec.stand_in_for} == {
        "tinyimagenet100",
        "tinyimagenet10",
        "dtd10",
        "food10",
    }


def test_registry_checksums_are_torchvisions():
    tv = torchvision.datasets
    pinned = {
        "cifar10": tv.CIFAR10.tgz_md5,
        "cifar100": tv.CIFAR100.tgz_md5,
        "flowers102": tv.Flowers102._file_dict["image"][1],
        "food101": tv.Food101._MD5,
        "dtd": tv.DTD._MD5,
        "pets": tv.OxfordIIITPet._RESOURCES[0][1],
        "stl10": tv.STL10.tgz_md5,
    }
    for name, md5 in pinned.items():
        assert DATASETS[name].download.checksum == f"md5:{md5}", name
    assert DATASETS["cifar10"].download.url == tv.CIFAR10.url
    assert DATASETS["food101"].download.url == tv.Food101._URL


def test_imagenet_class_lists():
    wnids100 = DATASETS["imagenet100"].class_wnids()
    assert len(wnids100) == len(set(wnids100)) == 100
    assert all(re.fullmatch(r"n\d{8}", w) for w in wnids100)
    assert {"n02869837", "n01749939", "n02090622", "n01855672"} <= set(wnids100)  # CMC's list, first and last
    imagenette = {
        "n01440764",
        "n02102040",
        "n02979186",
        "n03000684",
        "n03028079",
        "n03394916",
        "n03417042",
        "n03425413",
        "n03445777",
        "n03888605",
    }
    assert set(DATASETS["imagenet10"].class_wnids()) == imagenette


@pytest.mark.usefixtures("mirror")
def test_registry_matches_the_mirror():
    for name, spec in DATASETS.items():
        if spec.mirror is None:
            continue
        meta = json.loads((MIRROR / spec.mirror / "meta.json").read_text())
        assert spec.num_classes == (spec.mirror_classes or len(meta["classes"])), name
        if spec.mirror_classes is None:
            assert spec.sizes == meta["splits"], name


def test_prepare_settings_hold_only_what_the_dataset_uses():
    config = {
        "root": "data",
        "source": "mirror",
        "mirror_dir": "m",
        "download_dir": "d",
        "imagenet_dir": "/in",
        "galaxy10_h5": "/g.h5",
        "galaxy10_sha256": "0" * 64,
    }
    assert prepare_settings("cifar10", config) == {"source": "mirror", "mirror_dir": "m"}
    assert prepare_settings("cifar100", config) == {"source": "mirror"}
    assert prepare_settings("cifar100", {**config, "source": "download"}) == {"source": "download", "download_dir": "d"}
    assert prepare_settings("imagenet100", config) == {"imagenet_dir": "/in"}
    assert prepare_settings("galaxy10", config) == {
        "source": "mirror",
        "galaxy10_h5": "/g.h5",
        "galaxy10_sha256": "0" * 64,
    }
    with pytest.raises(ValueError, match="unknown dataset 'imagenet1k'"):
        prepare_settings("imagenet1k", config)


def test_auto_source_takes_the_mirror_where_it_holds_the_dataset_and_downloads_elsewhere(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "cifar10").mkdir(parents=True)
    (mirror / "cifar10" / "meta.json").write_text("{}")
    config = {"source": "auto", "mirror_dir": str(mirror), "download_dir": "d"}
    assert prepare_settings("cifar10", config) == {"source": "mirror", "mirror_dir": str(mirror)}
    assert prepare_settings("flowers102", config) == {"source": "download", "download_dir": "d"}  # not mirrored here
    assert prepare_settings("cifar100", config) == {"source": "download", "download_dir": "d"}  # never mirrored
    outside = {**config, "mirror_dir": str(tmp_path / "no_such_mirror")}  # a user without ../shared
    assert prepare_settings("cifar10", outside)["source"] == "download"
    assert prepare_settings("food10", outside)["source"] == "mirror"  # a stand-in that exists only in the mirror
    assert prepare_settings("cifar10", {})["source"] in ("mirror", "download")  # auto is the default


def test_config_file_passes_its_schema_and_bad_values_do_not():
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "data.yaml").read_text())
    schema = str(REPO / "workflow" / "schemas" / "data.schema.yaml")
    validate(config["data"], schema)
    for bad in ({"source": "web"}, {"galaxy10_sha256": "abc"}, {"mirror": "x"}):
        with pytest.raises(Exception, match="valid|Additional|match"):
            validate({**config["data"], **bad}, schema)


# ---------------------------------------------------------------- sources


def assert_nothing_left(out_dir: Path, name: str):
    assert not (out_dir / name).exists()
    assert not list(out_dir.glob(f".{name}.staging-*"))


def test_missing_mirror_dataset_says_what_to_download_and_where(tmp_path):
    with pytest.raises(SourceUnavailable) as raised:
        prepare("cifar100", out_dir=tmp_path, mirror_dir=tmp_path / "empty", download_dir=tmp_path / "dl")
    message = str(raised.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in message
    assert str(tmp_path / "dl" / "cifar-100-python.tar.gz") in message and "data.source: download" in message
    assert_nothing_left(tmp_path, "cifar100")


def test_failed_download_says_what_to_download_and_where(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(SourceUnavailable) as raised:
        prepare("cifar10", out_dir=tmp_path, source="download", download_dir=tmp_path / "dl")
    message = str(raised.value)
    assert "no network" in message and "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert (
        "md5:c58f30108f718f92721af3b95e74349a" in message and str(tmp_path / "dl" / "cifar-10-python.tar.gz") in message
    )
    assert "data.source: mirror" in message
    assert_nothing_left(tmp_path, "cifar10")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(SourceUnavailable, match=re.escape(str(tmp_path / "dl" / "Galaxy10_DECals.h5"))) as raised:
        prepare("galaxy10", out_dir=tmp_path, source="download", download_dir=tmp_path / "dl")
    assert "https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5" in str(raised.value)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("imagenet100", ["https://image-net.org", "data.imagenet_dir"]),
        ("imagenet", ["https://image-net.org", "data.imagenet_dir"]),
        ("galaxy10", ["https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5", "data.galaxy10_h5"]),
        ("dtd10", ["only in the offline mirror", "meta.json", "data.mirror_dir"]),
    ],
)
def test_unservable_dataset_error_names_the_source(tmp_path, name, expected):
    with pytest.raises(SourceUnavailable) as raised:
        prepare(name, out_dir=tmp_path, mirror_dir=tmp_path / "empty")
    for text in expected:
        assert text in str(raised.value)
    assert_nothing_left(tmp_path, name)


def test_download_source_reencodes_torchvision_images(tmp_path, monkeypatch):
    originals = {
        True: [smooth_image(i, 32, 32) for i in range(7)],
        False: [smooth_image(100 + i, 32, 32) for i in range(3)],
    }

    class FakeCIFAR10:  # what torchvision.datasets.CIFAR10 yields: PIL images and int labels
        classes = [f"class{i}" for i in range(10)]

        def __init__(self, root, train, download):
            assert download and Path(root) == tmp_path / "dl"
            self.images = originals[train]

        def __len__(self):
            return len(self.images)

        def __getitem__(self, i):
            return Image.fromarray(self.images[i]), i % 10

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    use_spec(monkeypatch, "cifar10", sizes={"train": 7, "test": 3})
    serial = prepare("cifar10", out_dir=tmp_path / "a", source="download", download_dir=tmp_path / "dl")
    meta = verify(serial)
    assert meta["splits"] == {"train": 7, "test": 3} and meta["classes"] == FakeCIFAR10.classes
    assert "cifar-10-python.tar.gz" in meta["source"]
    train = EncodedImages(serial, "train")
    for i, original in enumerate(originals[True]):
        image, label = train[i]
        assert label == i % 10
        assert np.abs(image.permute(1, 2, 0).numpy().astype(int) - original).mean() < 2.0
    parallel = prepare("cifar10", out_dir=tmp_path / "b", source="download", download_dir=tmp_path / "dl", workers=2)
    assert json.loads((parallel / "meta.json").read_text())["sha256"] == meta["sha256"]


def write_galaxy10_h5(path: Path, labels: np.ndarray) -> None:
    """Official layout: images (N, 256, 256, 3) uint8, ans (N,), plus catalogue columns.
    Image i is a flat grey of value 10 + 5 i, so a decoded image tells its index."""
    values = 10 + 5 * np.arange(len(labels), dtype=np.uint8)
    images = np.broadcast_to(values[:, None, None, None], (len(labels), 256, 256, 3))
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["ans"] = labels.astype(np.uint8)
        f["ra"] = np.linspace(0, 360, len(labels))


def test_galaxy10_from_an_h5_file_in_the_official_layout(tmp_path):
    class_sizes = [2, 3, 4, 5, 6, 2, 3, 4, 5, 6]
    labels = np.random.default_rng(1).permutation(np.repeat(np.arange(10), class_sizes))
    h5_path = tmp_path / "Galaxy10_DECals.h5"
    write_galaxy10_h5(h5_path, labels)

    root = prepare("galaxy10", out_dir=tmp_path / "out", galaxy10_h5=h5_path, galaxy10_sha256=sha256(h5_path))
    meta = verify(root)
    assert (
        meta["classes"][0] == "Disturbed" and meta["classes"][9] == "Edge-on with Bulge" and len(meta["classes"]) == 10
    )
    assert meta["image_size"] == "256x256"
    seen = {}
    for split in ("train", "test"):
        dataset = EncodedImages(root, split)
        for image, label in dataset:
            assert image.shape == (3, 256, 256)
            index = int(round((image.float().mean().item() - 10) / 5))
            assert label == labels[index]
            seen[index] = split
    assert sorted(seen) == list(range(len(labels)))  # every image once: disjoint splits covering all
    nearest_fifth = {2: 0, 3: 1, 4: 1, 5: 1, 6: 1}  # round(n_c / 5) test images per class
    for c, size in enumerate(class_sizes):
        in_test = sum(1 for i, split in seen.items() if labels[i] == c and split == "test")
        assert in_test == nearest_fifth[size], c

    again = prepare("galaxy10", out_dir=tmp_path / "again", galaxy10_h5=h5_path, galaxy10_sha256=None)
    assert json.loads((again / "meta.json").read_text())["sha256"] == meta["sha256"]  # seeded and deterministic

    with pytest.raises(DatasetError, match=re.escape(str(h5_path)) + ".*sha256"):
        prepare("galaxy10", out_dir=tmp_path / "bad", galaxy10_h5=h5_path)  # the Zenodo checksum
    with h5py.File(h5_path, "a") as f:
        del f["ans"]
    with pytest.raises(DatasetError, match=re.escape(str(h5_path)) + ".*'ans'"):
        prepare("galaxy10", out_dir=tmp_path / "bad", galaxy10_h5=h5_path, galaxy10_sha256=None)
    assert_nothing_left(tmp_path / "bad", "galaxy10")


def write_tiny_imagenet_mirror(mirror: Path, num_classes: int = 12) -> dict:
    """A tinyimagenet100-like mirror folder: classes interleaved, 3 train / 2 test per class."""
    folder = mirror / "tinyimagenet100"
    wnids = [f"n{1000000 + c:08d}" for c in range(num_classes)]
    splits = {}
    for split, per_class in (("train", 3), ("test", 2)):
        labels = [c for _ in range(per_class) for c in range(num_classes)]
        encoded = [encode_jpeg(smooth_image(1000 * per_class + i, 16, 16)) for i in range(len(labels))]
        splits[split] = (encoded, labels)
    write_dataset(folder, splits, [f"{w}: thing {c}" for c, w in enumerate(wnids)])
    meta = json.loads((folder / "meta.json").read_text())
    meta["wnids"] = wnids
    (folder / "meta.json").write_text(json.dumps(meta))
    return splits


def test_tinyimagenet10_is_the_first_10_classes_of_the_mirror(tmp_path, monkeypatch):
    splits = write_tiny_imagenet_mirror(tmp_path / "mirror")
    use_spec(monkeypatch, "tinyimagenet10", sizes={})
    root = prepare("tinyimagenet10", out_dir=tmp_path / "out", mirror_dir=tmp_path / "mirror")
    meta = verify(root)
    assert meta["classes"] == [f"n{1000000 + c:08d}: thing {c}" for c in range(10)]
    assert meta["wnids"] == [f"n{1000000 + c:08d}" for c in range(10)]
    assert meta["label"] == "tinyimagenet10 (stand-in for ImageNet-10)"
    for split, (encoded, labels) in splits.items():
        kept = [(e, label) for e, label in zip(encoded, labels) if label < 10]
        with np.load(root / f"{split}.npz") as arrays:
            o = arrays["offsets"]
            assert arrays["labels"].tolist() == [label for _, label in kept]
            assert [arrays["jpeg"][o[i] : o[i + 1]].tobytes() for i in range(len(kept))] == [e for e, _ in kept]
    assert meta["splits"] == {"train": 30, "test": 20}

    source = tmp_path / "mirror" / "tinyimagenet100" / "test.npz"
    source.write_bytes(source.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=re.escape(str(source))):
        prepare("tinyimagenet10", out_dir=tmp_path / "bad", mirror_dir=tmp_path / "mirror")
    assert_nothing_left(tmp_path / "bad", "tinyimagenet10")


def test_imagenet10_from_an_image_folder(tmp_path, monkeypatch):
    wnids = DATASETS["imagenet10"].class_wnids()
    root = tmp_path / "imagenet"
    files = {}
    for split, per_class in (("train", 2), ("val", 1)):
        for wnid in wnids + ["n09999999"]:  # a class outside the subset is ignored
            (root / split / wnid).mkdir(parents=True)
            for k in range(per_class):
                path = root / split / wnid / f"{wnid}_{k}.JPEG"
                path.write_bytes(encode_jpeg(smooth_image(len(files))))
                files[path] = len(files)
    png = root / "train" / wnids[0] / "extra.png"
    Image.fromarray(smooth_image(99)).save(png)
    use_spec(monkeypatch, "imagenet10", sizes={})
    prepared = prepare("imagenet10", out_dir=tmp_path / "out", imagenet_dir=root)
    meta = verify(prepared)
    assert meta["classes"] == sorted(wnids) and meta["splits"] == {"train": 21, "val": 10}
    with np.load(prepared / "train.npz") as arrays:
        o, labels = arrays["offsets"], arrays["labels"]
        stored = [arrays["jpeg"][o[i] : o[i + 1]].tobytes() for i in range(len(labels))]
    expected = []
    for label, wnid in enumerate(sorted(wnids)):
        for path in sorted((root / "train" / wnid).iterdir()):
            expected.append((path, label))
    assert labels.tolist() == [label for _, label in expected]
    for data, (path, _) in zip(stored, expected):
        if path.suffix == ".JPEG":
            assert data == path.read_bytes()  # JPEG kept byte for byte
        else:
            assert data[:2] == b"\xff\xd8"  # PNG re-encoded as JPEG, same pixels
            decoded = np.asarray(Image.open(io.BytesIO(data)), dtype=int)
            assert np.abs(decoded - smooth_image(99)).mean() < 2.0

    (root / "val" / wnids[3]).rename(root / "val" / "elsewhere")
    with pytest.raises(SourceUnavailable, match=re.escape(str(root / "val" / wnids[3]))):
        prepare("imagenet10", out_dir=tmp_path / "bad", imagenet_dir=root)


def test_galaxy10_download_is_checked_against_the_pinned_sha256(tmp_path, monkeypatch):
    served = tmp_path / "served.h5"
    write_galaxy10_h5(served, np.arange(10).repeat(5))
    use_spec(monkeypatch, "galaxy10", download=dataclasses.replace(DATASETS["galaxy10"].download, url=served.as_uri()))
    root = prepare("galaxy10", out_dir=tmp_path, source="download", galaxy10_sha256=sha256(served))
    assert sha256(tmp_path / "downloads" / "Galaxy10_DECals.h5") == sha256(served)
    assert verify(root)["splits"] == {"train": 40, "test": 10}
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "downloads" / "Galaxy10_DECals.h5")) + ".*sha256"):
        prepare("galaxy10", out_dir=tmp_path / "bad", source="download", download_dir=tmp_path / "downloads")


def write_tiny_imagenet_zip(path: Path, num_classes: int = 12) -> dict:
    """tiny-imagenet-200.zip's layout: train/<wnid>/images/<wnid>_<i>.JPEG, val/images/val_<k>.JPEG
    with val/val_annotations.txt, words.txt. Returns {member name: bytes}."""
    wnids = [f"n{2000000 + 7 * c:08d}" for c in range(num_classes)][::-1]  # listed unsorted
    members = {"tiny-imagenet-200/words.txt": "".join(f"{w}\tword {w}\n" for w in wnids).encode()}
    for c, wnid in enumerate(wnids):
        for i in (0, 1, 2, 10):  # numeric order: 0, 1, 2, 10 (not 0, 1, 10, 2)
            members[f"tiny-imagenet-200/train/{wnid}/images/{wnid}_{i}.JPEG"] = encode_jpeg(
                smooth_image(100 * c + i, 8, 8)
            )
    annotations = []
    for k in range(2 * num_classes):
        members[f"tiny-imagenet-200/val/images/val_{k}.JPEG"] = encode_jpeg(smooth_image(5000 + k, 8, 8))
        annotations.append(f"val_{k}.JPEG\t{wnids[(5 * k) % num_classes]}\t0\t0\t7\t7")
    members["tiny-imagenet-200/val/val_annotations.txt"] = "\n".join(annotations).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return members


def test_tinyimagenet10_download_follows_the_mirror_recipe(tmp_path, monkeypatch):
    served = tmp_path / "served.zip"
    members = write_tiny_imagenet_zip(served)
    md5 = hashlib.md5(served.read_bytes()).hexdigest()
    download = dataclasses.replace(DATASETS["tinyimagenet10"].download, url=served.as_uri(), checksum=f"md5:{md5}")
    use_spec(monkeypatch, "tinyimagenet10", sizes={}, download=download)
    monkeypatch.setattr("lejepa.data.sources.TINYIMAGENET_TRAIN_PER_CLASS", 3)
    root = prepare("tinyimagenet10", out_dir=tmp_path, source="download")
    meta = verify(root)
    wnids = sorted(f"n{2000000 + 7 * c:08d}" for c in range(12))[:10]
    assert meta["wnids"] == wnids and meta["classes"][0] == f"{wnids[0]}: word {wnids[0]}"
    expected = {
        "train": [
            (f"tiny-imagenet-200/train/{w}/images/{w}_{i}.JPEG", c) for c, w in enumerate(wnids) for i in (0, 1, 2)
        ],
        "test": [],
    }
    annotations = members["tiny-imagenet-200/val/val_annotations.txt"].decode().splitlines()
    for c, wnid in enumerate(wnids):
        expected["test"] += [
            (f"tiny-imagenet-200/val/images/{line.split()[0]}", c) for line in annotations if line.split()[1] == wnid
        ]
    for split, items in expected.items():
        with np.load(root / f"{split}.npz") as arrays:
            o = arrays["offsets"]
            assert arrays["labels"].tolist() == [c for _, c in items]
            assert [arrays["jpeg"][o[i] : o[i + 1]].tobytes() for i in range(len(items))] == [
                members[m] for m, _ in items
            ]

    (tmp_path / "downloads" / "tiny-imagenet-200.zip").write_bytes(b"not the archive")
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "downloads" / "tiny-imagenet-200.zip")) + ".*md5"):
        prepare("tinyimagenet10", out_dir=tmp_path / "bad", source="download", download_dir=tmp_path / "downloads")


@pytest.mark.usefixtures("mirror")
def test_prepare_dtd10_from_the_real_mirror(tmp_path):
    root = prepare("dtd10", out_dir=tmp_path, mirror_dir=MIRROR)
    mirror_meta = json.loads((MIRROR / "dtd" / "meta.json").read_text())
    for split in ("train", "test"):
        assert sha256(root / f"{split}.npz") == mirror_meta["sha256"][f"{split}.npz"]
    meta = verify(root)
    assert meta["label"] == "dtd10 (stand-in for DTD)" and meta["classes"] == mirror_meta["classes"]
    train, test = EncodedImages(root, "train"), EncodedImages(root, "test")
    assert (len(train), len(test)) == (960, 240)
    assert train[0][0].shape == (3, 96, 96)
    with np.load(MIRROR / "dtd" / "test.npz") as arrays:
        assert test.labels.tolist() == arrays["labels"].tolist()


# ---------------------------------------------------------------- the Snakemake rule


@pytest.mark.slow
@pytest.mark.usefixtures("mirror")
def test_prepare_rules_run_and_a_corrupted_mirror_stops_only_what_depends_on_it(tmp_path):
    (tmp_path / "Snakefile").write_text(f"""
configfile: "{REPO / 'config' / 'config.yaml'}"
configfile: "{REPO / 'config' / 'data.yaml'}"
configfile: "{REPO / 'config' / 'pretrain.yaml'}"
configfile: "{REPO / 'config' / 'probe.yaml'}"
include: "{REPO / 'workflow' / 'rules' / 'common.smk'}"
include: "{REPO / 'workflow' / 'rules' / 'data.smk'}"
rule uses_dtd10:
    input: dataset_meta("dtd10")
    output: "dtd10.done"
    shell: "touch {{output}}"
rule uses_tinyimagenet10:
    input: dataset_meta("tinyimagenet10")
    output: "tinyimagenet10.done"
    shell: "touch {{output}}"
""")
    mirror = tmp_path / "mirror"
    write_tiny_imagenet_mirror(mirror)
    (mirror / "dtd").symlink_to(MIRROR / "dtd")
    truncated = mirror / "tinyimagenet100" / "train.npz"
    truncated.write_bytes(truncated.read_bytes()[:-10])
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"data": {"root": "prepared", "mirror_dir": str(mirror)}}))

    command = [
        "snakemake",
        "-c1",
        "--keep-going",
        "--configfiles",
        "run.yaml",
        "--",
        "uses_dtd10",
        "uses_tinyimagenet10",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and str(truncated) in output  # the terminal names the bad file
    assert str(truncated) in (tmp_path / "logs" / "prepare" / "tinyimagenet10.log").read_text()
    assert not (tmp_path / "prepared" / "tinyimagenet10").exists() and not (tmp_path / "tinyimagenet10.done").exists()
    assert verify(tmp_path / "prepared" / "dtd10")["splits"] == {"train": 960, "test": 240}
    assert (tmp_path / "dtd10.done").exists()
