"""The datasets of the paper and the offline stand-ins, by name.

Each `DatasetSpec` says what a name means: classes, splits (and which one trains,
validates and tests), the resolution it is trained at, where it comes from (an official
download with its checksum, a user-supplied path, and/or a folder of the offline mirror
../shared/datasets), and whether it is a stand-in for a dataset of the paper. A stand-in
keeps its own name everywhere (`tinyimagenet100`, never `imagenet100`), and its
`label`, also written into its meta.json, says what it stands in for.

    from lejepa.data import DATASETS
    DATASETS["tinyimagenet100"].label  # 'tinyimagenet100 (stand-in for ImageNet-100)'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent

# sha256 of Galaxy10_DECals.h5 on Zenodo, as pinned by its authors' loader
# (henrysky/astroNN, src/astroNN/datasets/galaxy10.py). Override with data.galaxy10_sha256.
GALAXY10_URL = "https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5"
GALAXY10_SHA256 = "19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571"
GALAXY10_CLASSES = (
    "Disturbed",
    "Merging",
    "Round Smooth",
    "In-between Round Smooth",
    "Cigar Shaped Smooth",
    "Barred Spiral",
    "Unbarred Tight Spiral",
    "Unbarred Loose Spiral",
    "Edge-on without Bulge",
    "Edge-on with Bulge",
)
# Galaxy10 has no official split: a stratified one, per class round(0.2 n_c) images to test,
# drawn with numpy.random.default_rng(0) (see sources.galaxy10_split). Fixed, so all runs share it.
GALAXY10_TEST_FRACTION = 0.2
GALAXY10_SPLIT_SEED = 0

IMAGENET_URL = "https://image-net.org/download-images.php"
TINYIMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINYIMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"


@dataclass(frozen=True)
class Download:
    """An official source: what to fetch, its checksum, and where a hand-downloaded copy goes."""

    url: str
    checksum: str  # "md5:<hex>" or "sha256:<hex>"; "" when the publisher gives none
    put_in: str  # path under data.download_dir where a copy fetched by hand must go
    torchvision: str | None = None  # torchvision.datasets class that fetches and md5-checks it


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str  # the dataset as the paper names it
    num_classes: int
    image_size: int  # side of the global views it is trained at (stored images may be larger)
    splits: tuple[str, ...]
    train_split: str = "train"
    val_split: str | None = None
    test_split: str = "test"
    sizes: dict = field(default_factory=dict)  # split -> number of images, where known exactly
    native_size: int | None = None  # side of every stored image when fixed
    prepare_from: str = "mirror"  # "torchvision", "galaxy10", "imagefolder", "tinyimagenet" or "mirror" (mirror only)
    download: Download | None = None
    user_path: str | None = None  # config key of a user-supplied source (data.<key>)
    class_list: str | None = None  # file under src/lejepa/data/ listing the classes (WordNet ids)
    mirror: str | None = None  # folder of the offline mirror holding it
    mirror_classes: int | None = None  # keep only the mirror's first k classes
    mirror_note: str | None = None  # how the mirror copy differs from the official data
    stand_in_for: str | None = None
    notes: str = ""

    @property
    def label(self) -> str:
        """The name to print beside its numbers; a stand-in says what it stands in for."""
        return f"{self.name} (stand-in for {self.stand_in_for})" if self.stand_in_for else self.name

    def class_wnids(self) -> list[str]:
        """WordNet ids of `class_list`, sorted (labels index this order, as in ImageFolder)."""
        lines = (HERE / self.class_list).read_text().splitlines()
        return sorted(line.split("#")[0].strip() for line in lines if line.split("#")[0].strip())


def _torchvision(cls: str, url: str, md5: str, put_in: str) -> Download:
    return Download(url=url, checksum=f"md5:{md5}" if md5 else "", put_in=put_in, torchvision=cls)


# One entry per dataset, kept compact so that the list reads as a table.
# fmt: off
_SPECS = [
    DatasetSpec(
        name="cifar10", title="CIFAR-10", num_classes=10, image_size=32, native_size=32,
        splits=("train", "test"), sizes={"train": 50000, "test": 10000},
        prepare_from="torchvision",
        download=_torchvision("CIFAR10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                              "c58f30108f718f92721af3b95e74349a", "cifar-10-python.tar.gz"),
        mirror="cifar10",
        notes="the mirror holds the complete official split as JPEG files of unknown quality",
    ),
    DatasetSpec(
        name="cifar100", title="CIFAR-100", num_classes=100, image_size=32, native_size=32,
        splits=("train", "test"), sizes={"train": 50000, "test": 10000},
        prepare_from="torchvision",
        download=_torchvision("CIFAR100", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                              "eb9058c3a382ffc7106e4002c42a8d85", "cifar-100-python.tar.gz"),
    ),
    DatasetSpec(
        name="flowers102", title="Flowers102", num_classes=102, image_size=224,
        splits=("train", "val", "test"), val_split="val", sizes={"train": 1020, "val": 1020, "test": 6149},
        prepare_from="torchvision",
        download=_torchvision("Flowers102", "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz",
                              "52808999861908f626f3c1f4e79d11fa",
                              "flowers-102/ (102flowers.tgz, imagelabels.mat, setid.mat)"),
        mirror="flowers102", mirror_note="official split, images center-cropped to 96 px",
    ),
    DatasetSpec(
        name="food101", title="Food101", num_classes=101, image_size=224,
        splits=("train", "test"), sizes={"train": 75750, "test": 25250},
        prepare_from="torchvision",
        download=_torchvision("Food101", "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
                              "85eeb15f3717b99a5da872d97d918f87", "food-101.tar.gz"),
    ),
    DatasetSpec(
        name="dtd", title="DTD", num_classes=47, image_size=224,
        splits=("train", "val", "test"), val_split="val", sizes={"train": 1880, "val": 1880, "test": 1880},
        prepare_from="torchvision",
        download=_torchvision("DTD", "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
                              "fff73e5086ae6bdbea199a49dfb8a4c1", "dtd/dtd-r1.0.1.tar.gz"),
        notes="official partition 1",
    ),
    DatasetSpec(
        name="pets", title="Oxford-IIIT Pets", num_classes=37, image_size=224,
        splits=("train", "test"), sizes={"train": 3680, "test": 3669},
        prepare_from="torchvision",
        download=_torchvision("OxfordIIITPet", "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
                              "5c4f3ee8e5d25df40f4fd59a7f44e54c",
                              "oxford-iiit-pet/ (images.tar.gz, "
                              "annotations.tar.gz md5 95a8c909bbe2e81eed6a22bccdf3f68f)"),
        notes="train = the official trainval list",
    ),
    DatasetSpec(
        name="aircraft", title="FGVC Aircraft", num_classes=100, image_size=224,
        splits=("train", "val", "test"), val_split="val", sizes={"train": 3334, "val": 3333, "test": 3333},
        prepare_from="torchvision",
        download=_torchvision("FGVCAircraft",
                              "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
                              "", "fgvc-aircraft-2013b/ (extracted archive)"),
        notes="100 variants; the publisher gives no checksum and torchvision checks none",
    ),
    DatasetSpec(
        name="cars", title="Stanford Cars", num_classes=196, image_size=224,
        splits=("train", "test"), sizes={"train": 8144, "test": 8041},
        prepare_from="torchvision",
        download=_torchvision("StanfordCars", "https://ai.stanford.edu/~jkrause/cars/car_dataset.html",
                              "", "stanford_cars/ (devkit/, cars_train/, cars_test/, cars_test_annos_withlabels.mat)"),
        notes="the original URL is dead and torchvision cannot download it: "
        "find a copy (e.g. on Kaggle) and place it by hand",
    ),
    DatasetSpec(
        name="stl10", title="STL-10", num_classes=10, image_size=96, native_size=96,
        splits=("train", "test"), sizes={"train": 5000, "test": 8000},
        prepare_from="torchvision",
        download=_torchvision("STL10", "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
                              "91f7769df0f17e558f3565bffb0c7dfb", "stl10_binary.tar.gz"),
        notes="labelled splits only (the 100k unlabelled images are not prepared)",
    ),
    DatasetSpec(
        name="galaxy10", title="Galaxy10 DECaLS", num_classes=10, image_size=224, native_size=256,
        splits=("train", "test"),
        prepare_from="galaxy10",
        download=Download(url=GALAXY10_URL, checksum=f"sha256:{GALAXY10_SHA256}", put_in="Galaxy10_DECals.h5"),
        user_path="galaxy10_h5",
        notes=(f"17,736 images (256x256 RGB) in 10 classes; no official split: seeded stratified split, "
               f"round({GALAXY10_TEST_FRACTION} n_c) images of each class to test (seed {GALAXY10_SPLIT_SEED}). "
               "The paper's table 5 says 11,008 training images; its split is not published"),
    ),
    DatasetSpec(
        name="imagenet", title="ImageNet-1k", num_classes=1000, image_size=224,
        splits=("train", "val"), test_split="val", sizes={"train": 1281167, "val": 50000},
        prepare_from="imagefolder", user_path="imagenet_dir",
        download=Download(url=IMAGENET_URL, checksum="", put_in="(any folder; set data.imagenet_dir)"),
        notes="ILSVRC-2012 in ImageFolder layout (<imagenet_dir>/{train,val}/<wnid>/*.JPEG); original JPEG bytes kept",
    ),
    DatasetSpec(
        name="imagenet100", title="ImageNet-100", num_classes=100, image_size=224,
        splits=("train", "val"), test_split="val", sizes={"val": 5000},
        prepare_from="imagefolder", user_path="imagenet_dir", class_list="imagenet100_classes.txt",
        download=Download(url=IMAGENET_URL, checksum="", put_in="(any folder; set data.imagenet_dir)"),
        notes="the 100 classes of CMC / solo-learn (imagenet100_classes.txt) from ImageNet-1k",
    ),
    DatasetSpec(
        name="imagenet10", title="ImageNet-10", num_classes=10, image_size=224,
        splits=("train", "val"), test_split="val", sizes={"val": 500},
        prepare_from="imagefolder", user_path="imagenet_dir", class_list="imagenet10_classes.txt",
        download=Download(url=IMAGENET_URL, checksum="", put_in="(any folder; set data.imagenet_dir)"),
        notes="Imagenette's 10 classes (imagenet10_classes.txt) with all their ImageNet-1k images (~13,000 train)",
    ),
    # Offline stand-ins: what the mirror offers in place of a dataset of the paper.
    DatasetSpec(
        name="tinyimagenet100", title="Tiny ImageNet (100 classes)", num_classes=100, image_size=64, native_size=64,
        splits=("train", "test"), sizes={"train": 22500, "test": 5000},
        prepare_from="tinyimagenet",
        download=Download(url=TINYIMAGENET_URL, checksum=f"md5:{TINYIMAGENET_MD5}", put_in="tiny-imagenet-200.zip"),
        mirror="tinyimagenet100", stand_in_for="ImageNet-100",
        notes="first 100 sorted wnids of Tiny ImageNet; first 225 train images per class; test = official val",
    ),
    DatasetSpec(
        name="tinyimagenet10", title="Tiny ImageNet (10 classes)", num_classes=10, image_size=64, native_size=64,
        splits=("train", "test"), sizes={"train": 2250, "test": 500},
        prepare_from="tinyimagenet",
        download=Download(url=TINYIMAGENET_URL, checksum=f"md5:{TINYIMAGENET_MD5}", put_in="tiny-imagenet-200.zip"),
        mirror="tinyimagenet100", mirror_classes=10, stand_in_for="ImageNet-10",
        notes="the first 10 classes of tinyimagenet100, derived when prepared",
    ),
    DatasetSpec(
        name="dtd10", title="DTD (10 classes)", num_classes=10, image_size=96, native_size=96,
        splits=("train", "test"), sizes={"train": 960, "test": 240},
        mirror="dtd", stand_in_for="DTD",
        notes="mirror only: the first 10 of 47 DTD classes, seeded 80/20 split, 96 px center crops",
    ),
    DatasetSpec(
        name="food10", title="Food101 (10 classes)", num_classes=10, image_size=64, native_size=64,
        splits=("train", "test"), sizes={"train": 3750, "test": 1250},
        mirror="food101", stand_in_for="Food101",
        notes="mirror only: the first 10 of 101 classes, 375 train / 125 test per class, 64 px center crops",
    ),
]
# fmt: on

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def dataset_label(name: str) -> str:
    """The label a table prints for a dataset name: the registry's (stand-ins say what they stand
    in for), or the name itself for a dataset the registry does not know."""
    return DATASETS[name].label if name in DATASETS else name


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[name]


def auto_source(spec: DatasetSpec, mirror_dir) -> str:
    """data.source: auto. The mirror when it holds the dataset (or the dataset exists only
    there), else the official download: the same config serves this project's machines
    and anyone else's."""
    in_mirror = spec.mirror is not None and (Path(mirror_dir) / spec.mirror / "meta.json").is_file()
    return "mirror" if in_mirror or spec.download is None else "download"


def prepare_settings(name: str, data_config: dict) -> dict:
    """The keyword arguments of `prepare` that matter for `name`, taken from the config's `data:`
    section: a rule's params hold only these, so editing another dataset's settings reruns nothing."""
    spec = get_spec(name)
    if spec.user_path == "imagenet_dir":
        return {"imagenet_dir": data_config.get("imagenet_dir")}
    source = data_config.get("source", "auto")
    if source == "auto":
        source = auto_source(spec, data_config.get("mirror_dir", "../shared/datasets"))
    settings = {"source": source}
    if spec.user_path == "galaxy10_h5":
        settings["galaxy10_h5"] = data_config.get("galaxy10_h5")
        settings["galaxy10_sha256"] = data_config.get("galaxy10_sha256", GALAXY10_SHA256)
    if source == "mirror" and spec.mirror:
        settings["mirror_dir"] = data_config.get("mirror_dir", "../shared/datasets")
    if source == "download" and spec.download:
        settings["download_dir"] = data_config.get("download_dir")
    return settings
