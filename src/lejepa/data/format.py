"""The one on-disk format of every prepared dataset (the format of ../shared/datasets).

    <root>/meta.json      name, label, classes, splits {split: N}, sha256 {"<split>.npz": hex}, provenance
    <root>/<split>.npz    an uncompressed npz of exactly three arrays:
        jpeg     uint8 (total_bytes,)  every encoded JPEG file, concatenated
        offsets  int64 (N + 1,)        image i is jpeg[offsets[i]:offsets[i + 1]]
        labels   int64 (N,)            index into meta["classes"]

Split names are "train", "val" and "test". Because the npz is stored uncompressed,
`EncodedImages` memory-maps the `jpeg` array instead of reading it, so a DataLoader
worker holds only the offsets and labels of a split (ImageNet's JPEGs take 140 GB).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from lejepa.io import atomic_path

SPLIT_NAMES = ("train", "val", "test")
ARRAY_NAMES = ("jpeg", "labels", "offsets")
META_KEYS = ("name", "classes", "splits", "sha256")
JPEG_QUALITY = 95
# A fixed member timestamp makes the bytes of an npz, hence its sha256, depend on its arrays only.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class DatasetError(ValueError):
    """A dataset file is missing, corrupted, truncated or laid out wrongly; the message names the file."""


def split_file(root, split: str) -> Path:
    return Path(root) / f"{split}.npz"


def meta_file(root) -> Path:
    return Path(root) / "meta.json"


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def encode_jpeg(image, *, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of a PIL image or a uint8 array (H, W, 3) or (H, W), as RGB."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decodes_as_rgb_jpeg(data: bytes) -> bool:
    """Whether torchvision's decoder (the one training uses) reads these bytes as an RGB image."""
    if data[:2] != b"\xff\xd8":
        return False
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except RuntimeError:
        return False
    return True


# ---------------------------------------------------------------- writing


def _zip_member(archive: zipfile.ZipFile, array_name: str):
    info = zipfile.ZipInfo(f"{array_name}.npy", date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    return archive.open(info, "w", force_zip64=True)


def write_split(path, samples: Iterable[tuple[bytes, int]]) -> int:
    """Write one split file from (jpeg_bytes, label) pairs; return the number of images.

    Streams the JPEG bytes through a temporary file, so memory holds only the offsets
    and labels; the npz appears at `path` only once complete (atomic rename).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    offsets, labels = [0], []
    with tempfile.TemporaryFile(dir=path.parent) as blob:
        for data, label in samples:
            if not data:
                raise DatasetError(f"{path}: image {len(labels)} has no bytes")
            blob.write(data)
            offsets.append(offsets[-1] + len(data))
            labels.append(int(label))
        blob.seek(0)
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
            "fortran_order": False,
            "shape": (offsets[-1],),
        }
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            with _zip_member(archive, "jpeg") as member:
                np.lib.format.write_array_header_1_0(member, header)
                shutil.copyfileobj(blob, member, 1 << 20)
            for name, values in (("offsets", offsets), ("labels", labels)):
                with _zip_member(archive, name) as member:
                    np.lib.format.write_array(member, np.asarray(values, dtype=np.int64), allow_pickle=False)
    return len(labels)


def write_meta(meta: dict, root) -> None:
    with atomic_path(meta_file(root)) as tmp:
        tmp.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- reading


def read_meta(root) -> dict:
    path = meta_file(root)
    if not path.is_file():
        raise DatasetError(f"{path}: missing; prepare the dataset first (snakemake prepare_<name>)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: not valid JSON ({error})") from error
    missing = [key for key in META_KEYS if key not in meta]
    if missing:
        raise DatasetError(f"{path}: missing key(s) {missing}")
    return meta


def _stored_member_offset(path: Path, array_name: str) -> int | None:
    """Byte offset of an uncompressed npz member's raw .npy file, or None if it is compressed."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{array_name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local_header = f.read(30)  # fixed part of a zip local file header
        name_length, extra_length = struct.unpack("<HH", local_header[26:30])
    return info.header_offset + 30 + name_length + extra_length


def _memmap_member(path: Path, array_name: str) -> np.ndarray:
    """The npz member as a read-only memory map when stored uncompressed, else read into memory."""
    start = _stored_member_offset(path, array_name)
    if start is None:
        with np.load(path, allow_pickle=False) as arrays:
            return arrays[array_name]
    with open(path, "rb") as f:
        f.seek(start)
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(f)
        data_start = f.tell()
    if fortran_order or dtype.hasobject:
        raise DatasetError(f"{path}: array {array_name!r} is not a plain C-ordered array")
    return np.memmap(path, dtype=dtype, mode="r", offset=data_start, shape=shape)


def read_split(path, *, memmap_jpeg: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(jpeg, offsets, labels) of one split file; a file that cannot be read raises DatasetError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: missing")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if sorted(arrays.files) != list(ARRAY_NAMES):
                raise DatasetError(f"{path}: holds arrays {sorted(arrays.files)}, expected {list(ARRAY_NAMES)}")
            offsets, labels = arrays["offsets"], arrays["labels"]
            jpeg = _memmap_member(path, "jpeg") if memmap_jpeg else arrays["jpeg"]
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, struct.error) as error:
        raise DatasetError(
            f"{path}: cannot be read, truncated or corrupted? ({type(error).__name__}: {error}); "
            f"if it is a prepared dataset, delete {path.parent} and prepare it again "
            f"(snakemake prepare_{path.parent.name}, or lejepa.data.prepare)"
        ) from error
    return jpeg, offsets, labels


def check_layout(path, jpeg: np.ndarray, offsets: np.ndarray, labels: np.ndarray, *, num_classes: int) -> None:
    """The array invariants of the format; raises DatasetError naming `path`."""
    if jpeg.dtype != np.uint8 or offsets.dtype != np.int64 or labels.dtype != np.int64:
        raise DatasetError(
            f"{path}: dtypes jpeg={jpeg.dtype} offsets={offsets.dtype} labels={labels.dtype}, "
            "expected uint8/int64/int64"
        )
    if jpeg.ndim != 1 or offsets.ndim != 1 or labels.ndim != 1 or len(offsets) != len(labels) + 1:
        raise DatasetError(
            f"{path}: shapes jpeg={jpeg.shape} offsets={offsets.shape} labels={labels.shape}, "
            "expected (B,), (N+1,), (N,)"
        )
    if offsets[0] != 0 or offsets[-1] != len(jpeg) or not np.all(np.diff(offsets) > 0):
        raise DatasetError(f"{path}: offsets must rise strictly from 0 to len(jpeg)={len(jpeg)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(f"{path}: labels span [{labels.min()}, {labels.max()}], outside [0, {num_classes})")


def verify(root) -> dict:
    """Check a prepared dataset: sha256 of every split file against meta.json, the array
    layout, split sizes, and that the first and last image of each split decode. Returns meta."""
    root = Path(root)
    meta = read_meta(root)
    for split, expected_count in meta["splits"].items():
        if split not in SPLIT_NAMES:
            raise DatasetError(f"{meta_file(root)}: unknown split {split!r}; split names are {SPLIT_NAMES}")
        path = split_file(root, split)
        if path.name not in meta["sha256"]:
            raise DatasetError(f"{meta_file(root)}: no sha256 for {path.name}")
        if not path.is_file():
            raise DatasetError(f"{path}: missing (listed in {meta_file(root)})")
        found = sha256_of(path)
        if found != meta["sha256"][path.name]:
            raise DatasetError(
                f"{path}: sha256 {found} does not match {meta_file(root)} ({meta['sha256'][path.name]}); "
                f"the file ({path.stat().st_size} bytes) is corrupted or truncated: delete {root} and prepare it again"
            )
        jpeg, offsets, labels = read_split(path)
        check_layout(path, jpeg, offsets, labels, num_classes=len(meta["classes"]))
        if len(labels) != expected_count:
            raise DatasetError(f"{path}: {len(labels)} images but {meta_file(root)} says {expected_count}")
        for i in sorted({0, len(labels) - 1}) if len(labels) else []:
            if not decodes_as_rgb_jpeg(jpeg[offsets[i] : offsets[i + 1]].tobytes()):
                raise DatasetError(f"{path}: image {i} is not a decodable JPEG")
    return meta


def __getattr__(name):
    """`EncodedImages` (a torch Dataset) lives in lejepa.data.images, imported on first use, so
    that this module, and the workflow's planning that reads it, load without torch."""
    if name == "EncodedImages":
        from lejepa.data.images import EncodedImages

        return EncodedImages
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
