"""Where a dataset's images come from, and `prepare`, which writes them in our format.

Sources (chosen by `source`, except user-supplied paths, which win whenever they are set):
    mirror     the npz files of the offline mirror (../shared/datasets/<folder>), copied and
               checked against the sha256 in its meta.json; tinyimagenet10 keeps the first
               10 classes of the tinyimagenet100 mirror.
    download   torchvision's downloaders with their md5 checks; Galaxy10's h5 from Zenodo
               (sha256); Tiny ImageNet's zip (md5).
    user paths data.imagenet_dir (ImageFolder) for imagenet, imagenet100, imagenet10;
               data.galaxy10_h5 for galaxy10.
Decoded images are re-encoded as JPEG quality 95. JPEG files that torchvision's decoder reads
(ImageNet, Tiny ImageNet) are kept byte for byte. When no source can serve a dataset the
error says what to download, from where, and where to put it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import os
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from lejepa.data.format import (
    DatasetError,
    decodes_as_rgb_jpeg,
    encode_jpeg,
    meta_file,
    read_split,
    sha256_of,
    split_file,
    verify,
    write_meta,
    write_split,
)
from lejepa.data.registry import (
    GALAXY10_CLASSES,
    GALAXY10_SHA256,
    GALAXY10_SPLIT_SEED,
    GALAXY10_TEST_FRACTION,
    DatasetSpec,
    get_spec,
)
from lejepa.io import DISK_FULL, disk_full, owner_tag, remove_leftovers

log = logging.getLogger("lejepa.data")

SOURCES = ("mirror", "download")
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
TINYIMAGENET_TRAIN_PER_CLASS = 225  # what the mirror's tinyimagenet100 keeps


class SourceUnavailable(DatasetError):
    """No configured source can serve the dataset; the message says how to get it."""


# ---------------------------------------------------------------- one split's samples
# Each holds cheap references to its images; sample i -> (jpeg bytes, label).


class TorchvisionImages:
    """A torchvision dataset yielding (PIL image, label), re-encoded as JPEG."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        image, label = self.dataset[i]
        return encode_jpeg(image), int(label)


def _keep_or_reencode(data: bytes) -> bytes:
    return data if decodes_as_rgb_jpeg(data) else encode_jpeg(Image.open(io.BytesIO(data)))


class ImageFiles:
    """Image files on disk; JPEGs that torchvision decodes are kept as they are."""

    def __init__(self, files, labels):
        self.files, self.labels = list(files), list(labels)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return _keep_or_reencode(Path(self.files[i]).read_bytes()), self.labels[i]


class ZipMembers:
    """Image files inside a zip archive, read without extracting it."""

    def __init__(self, zip_path, names, labels):
        self.zip_path, self.names, self.labels = Path(zip_path), list(names), list(labels)
        self._archive, self._pid = None, None

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        if self._pid != os.getpid():  # an archive opened before a fork must not be shared
            self._archive, self._pid = zipfile.ZipFile(self.zip_path), os.getpid()
        return _keep_or_reencode(self._archive.read(self.names[i])), self.labels[i]

    def __getstate__(self):
        return {**self.__dict__, "_archive": None, "_pid": None}


class H5Images:
    """Rows of an HDF5 image array (N, H, W, 3) uint8, e.g. Galaxy10's `images`."""

    def __init__(self, h5_path, indices, labels, *, key="images"):
        self.h5_path, self.key = Path(h5_path), key
        self.indices, self.labels = np.asarray(indices), np.asarray(labels)
        self._file, self._pid = None, None

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        import h5py

        if self._pid != os.getpid():
            self._file, self._pid = h5py.File(self.h5_path, "r"), os.getpid()
        return encode_jpeg(self._file[self.key][int(self.indices[i])]), int(self.labels[i])

    def __getstate__(self):
        return {**self.__dict__, "_file": None, "_pid": None}


class NpzImages:
    """Some images of a split file of our format, bytes unchanged."""

    def __init__(self, npz_path, indices):
        self.jpeg, self.offsets, labels = read_split(npz_path)
        self.indices, self.labels = np.asarray(indices), labels[indices]

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        j = self.indices[i]
        return self.jpeg[self.offsets[j] : self.offsets[j + 1]].tobytes(), int(self.labels[i])


_worker_samples = None


def _start_worker(samples):
    global _worker_samples
    _worker_samples = samples


def _sample_in_worker(i):
    return _worker_samples[i]


def write_samples(path, samples, *, workers: int = 1) -> int:
    """Encode every sample of one split (in `workers` processes, order kept) into `path`."""
    total = len(samples)
    if total == 0:
        raise DatasetError(f"{Path(path).name}: the source holds no images for this split")

    def logged(stream):
        for count, sample in enumerate(stream, start=1):
            if count % max(1, total // 10) == 0 or count == total:
                log.info("%s: %d / %d images", Path(path).name, count, total)
            yield sample

    if workers <= 1:
        return write_split(path, logged(samples[i] for i in range(total)))
    with multiprocessing.Pool(workers, initializer=_start_worker, initargs=(samples,)) as pool:
        return write_split(path, logged(pool.imap(_sample_in_worker, range(total), chunksize=64)))


# ---------------------------------------------------------------- help when a source fails


def _where_to_put(spec: DatasetSpec, download_dir: Path) -> str:
    d = spec.download
    checksum = f" ({d.checksum})" if d.checksum else ""
    return f"download {d.url}{checksum} and put it at {download_dir / d.put_in}"


def _imagenet_help(spec: DatasetSpec) -> str:
    return (
        f"{spec.name} is built from ImageNet-1k (ILSVRC-2012), which cannot be downloaded automatically: "
        f"get it from {spec.download.url} (free account), arrange it as an ImageFolder "
        f"(<dir>/train/<wnid>/*.JPEG and <dir>/val/<wnid>/*.JPEG) and set data.imagenet_dir "
        f"in config/data.yaml to <dir>"
    )


def _not_in_mirror(spec: DatasetSpec, mirror_dir: Path, download_dir: Path) -> SourceUnavailable:
    expected = (mirror_dir / (spec.mirror or spec.name) / "meta.json").resolve()
    if spec.download is None:
        return SourceUnavailable(
            f"{spec.name} exists only in the offline mirror, expected at {expected} "
            f"(data.mirror_dir = {mirror_dir}); point data.mirror_dir at a copy of the staged datasets"
            + (
                f", or use the full dataset instead of this stand-in for {spec.stand_in_for}"
                if spec.stand_in_for
                else ""
            )
        )
    return SourceUnavailable(
        f"{spec.name}: the offline mirror has no {expected} (data.mirror_dir = {mirror_dir}). "
        f"Set data.source: download in config/data.yaml to fetch it, or {_where_to_put(spec, download_dir)} "
        f"and set data.source: download"
    )


def _download_failed(spec: DatasetSpec, download_dir: Path, error: Exception) -> SourceUnavailable:
    mirror = f", or set data.source: mirror (the mirror holds {spec.name})" if spec.mirror else ""
    return SourceUnavailable(
        f"{spec.name}: could not get it from its official source ({type(error).__name__}: {error}). "
        f"By hand: {_where_to_put(spec, download_dir)}, then rerun{mirror}"
    )


def _check_file(path: Path, checksum: str) -> None:
    """Compare a file with "md5:<hex>" / "sha256:<hex>"; an empty checksum checks nothing."""
    if not checksum:
        log.warning("%s: no checksum pinned, not verified", path)
        return
    algorithm, expected = checksum.split(":", 1)
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected.lower():
        raise DatasetError(
            f"{path}: {algorithm} {digest.hexdigest()} does not match the pinned {expected} "
            f"({path.stat().st_size} bytes): corrupted, truncated or a different release; "
            "delete it and download it again"
        )
    log.info("%s: %s verified", path, algorithm)


def _download(url: str, path: Path) -> None:
    """Fetch `url` to `path`; a partial download never takes the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", url, path)
    partial = path.with_name(path.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as f:
            shutil.copyfileobj(response, f, 1 << 20)
    except BaseException:  # a full disk, a dropped connection: no partial file stays behind
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


# ---------------------------------------------------------------- builders: write splits into `staging`, return meta


def _copy_verified(source: Path, target: Path, expected_sha256: str) -> None:
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(target, "wb") as dst:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
            dst.write(chunk)
    if digest.hexdigest() != expected_sha256:
        target.unlink()
        raise DatasetError(
            f"{source}: sha256 {digest.hexdigest()} does not match {source.parent / 'meta.json'} ({expected_sha256}); "
            f"the mirror file ({source.stat().st_size} bytes) is corrupted or truncated"
        )


def from_mirror(spec: DatasetSpec, mirror_dir: Path, staging: Path, download_dir: Path) -> dict:
    folder = mirror_dir / spec.mirror
    if not meta_file(folder).is_file():
        raise _not_in_mirror(spec, mirror_dir, download_dir)
    try:
        mirror_meta = json.loads(meta_file(folder).read_text())
        checksums = mirror_meta["sha256"]
    except (json.JSONDecodeError, KeyError) as error:
        raise DatasetError(f"{meta_file(folder)}: unreadable or without sha256 ({error})") from error
    classes = list(mirror_meta["classes"])[: spec.mirror_classes]
    for split in spec.splits:
        source = split_file(folder, split)
        if source.name not in checksums or not source.is_file():
            raise DatasetError(f"{source}: missing from the mirror or from its meta.json")
        if spec.mirror_classes is None:
            _copy_verified(source, split_file(staging, split), checksums[source.name])
            continue
        if sha256_of(source) != checksums[source.name]:
            raise DatasetError(
                f"{source}: sha256 does not match {meta_file(folder)}; the mirror file is corrupted or truncated"
            )
        _, _, labels = read_split(source)
        write_samples(split_file(staging, split), NpzImages(source, np.flatnonzero(labels < len(classes))))
    meta = {
        key: mirror_meta[key]
        for key in ("image_size", "source", "original_dataset", "license", "notes")
        if key in mirror_meta
    }
    if "wnids" in mirror_meta:
        meta["wnids"] = mirror_meta["wnids"][: len(classes)]
    if spec.mirror_classes:
        meta["notes"] = f"the first {spec.mirror_classes} classes of the {spec.mirror} mirror. " + meta.get("notes", "")
    meta["classes"] = classes
    meta["prepared_from"] = {"source": "mirror", "path": str(folder.resolve())}
    return meta


def _torchvision_split(spec: DatasetSpec, split: str, download_dir: Path):
    import torchvision.datasets

    cls = getattr(torchvision.datasets, spec.download.torchvision)
    if spec.name in ("cifar10", "cifar100"):
        kwargs = {"train": split == "train"}
    elif spec.name == "pets":
        kwargs = {"split": {"train": "trainval", "test": "test"}[split]}
    else:
        kwargs = {"split": split}
    return cls(root=str(download_dir), download=spec.name != "cars", **kwargs)


def from_torchvision(spec: DatasetSpec, download_dir: Path, staging: Path, workers: int) -> dict:
    datasets = {}
    for split in spec.splits:
        try:
            datasets[split] = _torchvision_split(spec, split, download_dir)
        except (OSError, RuntimeError, ValueError) as error:
            raise _download_failed(spec, download_dir, error) from error
    classes = list(datasets[spec.train_split].classes)
    if len(classes) != spec.num_classes:
        raise DatasetError(f"{download_dir}: {spec.name} has {len(classes)} classes, expected {spec.num_classes}")
    for split, dataset in datasets.items():
        write_samples(split_file(staging, split), TorchvisionImages(dataset), workers=workers)
    return {
        "classes": classes,
        "source": (
            f"torchvision.datasets.{spec.download.torchvision} from {spec.download.url} {spec.download.checksum}"
        ).strip(),
        "prepared_from": {"source": "download", "path": str(download_dir.resolve())},
    }


def galaxy10_split(labels: np.ndarray, *, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: round(test_fraction * n_c) random images of each class c go to test.
    Returns sorted (train_indices, test_indices)."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        test.extend(rng.permutation(members)[: round(test_fraction * len(members))])
    test = np.sort(np.asarray(test, dtype=np.int64))
    return np.setdiff1d(np.arange(len(labels)), test), test


def from_galaxy10(spec, *, h5_path, sha256, source, download_dir, staging, workers, mirror_dir) -> dict:
    import h5py

    if h5_path is None:
        if source == "mirror":
            raise SourceUnavailable(
                f"galaxy10 is not in the offline mirror ({mirror_dir}): {_where_to_put(spec, download_dir)} "
                f"and set data.galaxy10_h5 to that path, or set data.source: download (2.7 GB)"
            )
        h5_path = download_dir / spec.download.put_in
        if not h5_path.is_file():
            try:
                _download(spec.download.url, h5_path)
            except OSError as error:
                raise _download_failed(spec, download_dir, error) from error
    h5_path = Path(h5_path)
    if not h5_path.is_file():
        raise SourceUnavailable(f"data.galaxy10_h5 = {h5_path} does not exist; {_where_to_put(spec, h5_path.parent)}")
    _check_file(h5_path, f"sha256:{sha256}" if sha256 else "")
    with h5py.File(h5_path, "r") as f:
        for key in ("images", "ans"):
            if key not in f:
                raise DatasetError(f"{h5_path}: no dataset {key!r} (Galaxy10_DECals.h5 holds images and ans)")
        shape, dtype, labels = f["images"].shape, f["images"].dtype, np.asarray(f["ans"], dtype=np.int64)
    if len(shape) != 4 or shape[3] != 3 or dtype != np.uint8 or labels.shape != (shape[0],):
        raise DatasetError(
            f"{h5_path}: images {shape} {dtype} and ans {labels.shape}; expected (N, H, W, 3) uint8 and (N,)"
        )
    if labels.min() < 0 or labels.max() >= len(GALAXY10_CLASSES):
        raise DatasetError(
            f"{h5_path}: ans spans [{labels.min()}, {labels.max()}], outside [0, {len(GALAXY10_CLASSES)})"
        )
    train, test = galaxy10_split(labels, test_fraction=GALAXY10_TEST_FRACTION, seed=GALAXY10_SPLIT_SEED)
    for split, indices in (("train", train), ("test", test)):
        write_samples(split_file(staging, split), H5Images(h5_path, indices, labels[indices]), workers=workers)
    return {
        "classes": list(GALAXY10_CLASSES),
        "image_size": f"{shape[1]}x{shape[2]}",
        "source": f"{spec.download.url} (sha256 {sha256 or 'not verified'})",
        "split": f"stratified: round({GALAXY10_TEST_FRACTION} n_c) images of class c to test, "
        f"numpy default_rng({GALAXY10_SPLIT_SEED})",
        "prepared_from": {"source": "file", "path": str(h5_path.resolve())},
    }


def from_imagefolder(spec: DatasetSpec, imagenet_dir, staging: Path, workers: int) -> dict:
    if not imagenet_dir:
        raise SourceUnavailable(_imagenet_help(spec))
    root = Path(imagenet_dir)
    if not (root / "train").is_dir():
        raise SourceUnavailable(f"data.imagenet_dir = {root} has no train/ folder. " + _imagenet_help(spec))
    classes = (
        spec.class_wnids() if spec.class_list else sorted(d.name for d in (root / "train").iterdir() if d.is_dir())
    )
    if len(classes) != spec.num_classes:
        raise DatasetError(f"{root / 'train'}: {len(classes)} class folders, expected {spec.num_classes}")
    for split in spec.splits:
        files, labels = [], []
        for label, wnid in enumerate(classes):
            folder = root / split / wnid
            if not folder.is_dir():
                raise SourceUnavailable(
                    f"{folder}: missing; {root / split} must hold one folder per class "
                    f"(for val/, sort the images into class folders with the usual valprep script)"
                )
            images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            files += images
            labels += [label] * len(images)
        write_samples(split_file(staging, split), ImageFiles(files, labels), workers=workers)
    return {
        "classes": classes,
        "source": f"ImageFolder at {root.resolve()} (ILSVRC-2012, {spec.download.url}); JPEG bytes kept",
        "prepared_from": {"source": "file", "path": str(root.resolve())},
    }


def from_tinyimagenet_zip(spec: DatasetSpec, download_dir: Path, staging: Path, workers: int) -> dict:
    """The mirror's recipe from the official zip: the first num_classes sorted wnids, the first
    225 training images of each (by file index), and all 50 official val images as test."""
    zip_path = download_dir / spec.download.put_in
    try:
        if not zip_path.is_file():
            _download(spec.download.url, zip_path)
    except OSError as error:
        raise _download_failed(spec, download_dir, error) from error
    _check_file(zip_path, spec.download.checksum)
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        words = dict(
            line.split("\t", 1)
            for line in archive.read("tiny-imagenet-200/words.txt").decode().splitlines()
            if "\t" in line
        )
        annotations = archive.read("tiny-imagenet-200/val/val_annotations.txt").decode().splitlines()
    train_file = re.compile(r"tiny-imagenet-200/train/(n\d+)/images/n\d+_(\d+)\.JPEG$")
    train_by_wnid: dict[str, list[tuple[int, str]]] = {}
    for name in names:
        if match := train_file.match(name):
            train_by_wnid.setdefault(match[1], []).append((int(match[2]), name))
    wnids = sorted(train_by_wnid)[: spec.num_classes]
    val_by_wnid: dict[str, list[tuple[int, str]]] = {}
    for line in annotations:
        filename, wnid = line.split("\t")[:2]
        val_by_wnid.setdefault(wnid, []).append(
            (int(re.findall(r"\d+", filename)[0]), f"tiny-imagenet-200/val/images/{filename}")
        )
    for split, by_wnid, keep in (("train", train_by_wnid, TINYIMAGENET_TRAIN_PER_CLASS), ("test", val_by_wnid, None)):
        members, labels = [], []
        for label, wnid in enumerate(wnids):
            chosen = [name for _, name in sorted(by_wnid.get(wnid, []))][:keep]
            members += chosen
            labels += [label] * len(chosen)
        write_samples(split_file(staging, split), ZipMembers(zip_path, members, labels), workers=workers)
    return {
        "classes": [f"{wnid}: {words.get(wnid, '').strip()}" for wnid in wnids],
        "wnids": wnids,
        "image_size": "64x64 (original)",
        "source": f"{spec.download.url} ({spec.download.checksum}); original JPEG bytes kept",
        "prepared_from": {"source": "download", "path": str(zip_path.resolve())},
    }


# ---------------------------------------------------------------- prepare


def _publish(staging: Path, target: Path, splits) -> None:
    """Move the checked files into place; meta.json last, so it marks a complete dataset."""
    target.mkdir(parents=True, exist_ok=True)
    meta_file(target).unlink(missing_ok=True)
    for stale in target.glob("*.npz"):
        stale.unlink()
    for split in splits:
        os.replace(split_file(staging, split), split_file(target, split))
    os.replace(meta_file(staging), meta_file(target))


def host_unreachable(host: str, *, timeout: float = 3.0) -> str | None:
    """None when a TCP connection to host:443 opens, else the reason it does not (for
    `unavailable_reason`, and for the frontier weights of lejepa.features)."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return None
    except OSError as error:
        return f"{host} unreachable ({error})"


def unavailable_reason(
    name: str,
    *,
    root="data",
    source: str = "mirror",
    mirror_dir="../shared/datasets",
    download_dir=None,
    imagenet_dir=None,
    galaxy10_h5=None,
    galaxy10_sha256: str | None = None,
    check_host=None,
) -> str | None:
    """None when `prepare` can serve `name` from the configured source, else one line saying why not.

    Cheap enough for a DAG to ask before it plans a dataset's jobs: it looks at files and, for
    a download, whether the host answers (`check_host(host) -> reason or None`; None = assume it
    does). A table cell whose dataset is unavailable shows this line instead of a number.
    """
    spec = get_spec(name)
    if meta_file(Path(root) / name).is_file():
        return None
    if spec.prepare_from == "imagefolder":
        has_train = imagenet_dir is not None and (Path(imagenet_dir) / "train").is_dir()
        return None if has_train else "needs ImageNet-1k: " + _imagenet_help(spec)
    download_dir = Path(download_dir) if download_dir else Path(root) / "downloads"
    if spec.prepare_from == "galaxy10" and galaxy10_h5 is not None:
        return None if Path(galaxy10_h5).is_file() else f"data.galaxy10_h5 = {galaxy10_h5} does not exist"
    if source == "mirror" and spec.mirror and spec.prepare_from != "galaxy10":
        folder = Path(mirror_dir) / spec.mirror
        return None if meta_file(folder).is_file() else f"not in the offline mirror ({folder} has no meta.json)"
    if spec.download is None:
        return f"{spec.name} exists only in the offline mirror, and data.source is {source}"
    needs = f"needs download: {spec.download.url}"
    if source == "mirror":
        return f"{needs} (data.source is mirror, and the mirror has no {spec.name})"
    if (download_dir / spec.download.put_in).exists():
        return None
    host = urllib.parse.urlparse(spec.download.url).hostname
    reason = check_host(host) if check_host else None
    return f"{needs} ({reason})" if reason else None


def prepare(
    name: str,
    *,
    out_dir,
    source: str = "mirror",
    mirror_dir="../shared/datasets",
    download_dir=None,
    imagenet_dir=None,
    galaxy10_h5=None,
    galaxy10_sha256: str | None = GALAXY10_SHA256,
    workers: int = 1,
) -> Path:
    """Write `<out_dir>/<name>/{<split>.npz, meta.json}` from the configured source, verified.

    Args:
        out_dir: the data root (config data.root); the dataset goes into out_dir/name.
        source: "mirror" or "download" (see the module docstring).
        download_dir: archives are fetched to / looked for here; default out_dir/downloads.
        imagenet_dir, galaxy10_h5: user-supplied sources, used whenever set.
        galaxy10_sha256: checked against galaxy10's h5; None skips the check.
        workers: processes that decode and encode images.
    Returns out_dir/name. Nothing is left behind on failure: the files are built and
    verified in a staging folder and only then moved into place.
    """
    spec = get_spec(name)
    if source not in SOURCES:
        raise ValueError(f"data.source must be one of {SOURCES}, got {source!r}")
    out_dir = Path(out_dir)
    download_dir = Path(download_dir) if download_dir else out_dir / "downloads"
    mirror_dir = Path(mirror_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out_dir, f".{name}.staging-")  # what a killed preparation left behind
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{name}.staging-{owner_tag()}-"))
    try:
        if spec.prepare_from == "imagefolder":
            meta = from_imagefolder(spec, imagenet_dir, staging, workers)
        elif spec.prepare_from == "galaxy10":
            meta = from_galaxy10(
                spec,
                h5_path=galaxy10_h5,
                sha256=galaxy10_sha256,
                source=source,
                download_dir=download_dir,
                staging=staging,
                workers=workers,
                mirror_dir=mirror_dir,
            )
        elif source == "mirror":
            if spec.mirror is None:
                raise _not_in_mirror(spec, mirror_dir, download_dir)
            meta = from_mirror(spec, mirror_dir, staging, download_dir)
        elif spec.prepare_from == "torchvision":
            meta = from_torchvision(spec, download_dir, staging, workers)
        elif spec.prepare_from == "tinyimagenet":
            meta = from_tinyimagenet_zip(spec, download_dir, staging, workers)
        else:
            raise _not_in_mirror(spec, mirror_dir, download_dir)  # mirror-only stand-in asked to download

        from_mirror_copy = meta["prepared_from"]["source"] == "mirror"
        note = f" [{spec.mirror_note}]" if from_mirror_copy and spec.mirror_note else ""
        counts = {split: len(read_split(split_file(staging, split))[2]) for split in spec.splits}
        meta = {
            "name": spec.name,
            "label": spec.label + note,
            "title": spec.title,
            "stand_in_for": spec.stand_in_for,
            "classes": meta.pop("classes"),
            "splits": counts,
            "roles": {"train": spec.train_split, "val": spec.val_split, "test": spec.test_split},
            "image_size": (
                f"{spec.native_size}x{spec.native_size}" if spec.native_size else "variable (original resolution)"
            ),
            "notes": spec.notes,
            **meta,
            "sha256": {split_file(staging, split).name: sha256_of(split_file(staging, split)) for split in spec.splits},
        }
        if len(meta["classes"]) != spec.num_classes:
            raise DatasetError(
                f"{name}: the source has {len(meta['classes'])} classes, the registry says {spec.num_classes}"
            )
        for split, expected in spec.sizes.items():
            if counts[split] != expected:
                raise DatasetError(
                    f"{name}: {counts[split]} {split} images from {meta['prepared_from']['path']}, "
                    f"expected {expected}; incomplete source?"
                )
        write_meta(meta, staging)
        verify(staging)
        _publish(staging, out_dir / name, spec.splits)
    except OSError as error:
        if error.errno in DISK_FULL:
            raise disk_full(error, out_dir / name) from error
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("prepared %s: %s", out_dir / name, counts)
    return out_dir / name
