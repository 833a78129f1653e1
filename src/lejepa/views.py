"""Multi-crop views for LeJEPA pretraining, and the evaluation transform.

The paper (section 6.1) uses V_g global views (224 px, RandomResizedCrop scale
(0.3, 1.0)) and V_l local views (96 px, scale (0.05, 0.3)) with the DINO
augmentations: flip, colour jitter, grayscale, Gaussian blur and solarisation.
DINO's recipe is asymmetric: the first global view is always blurred, the
second is rarely blurred but sometimes solarised, local views are blurred half
of the time. For small images the sizes scale down (e.g. 32/16 px for CIFAR).

Why not one torchvision `v2.Compose` per view: at 32 px every transform costs a
few microseconds of dispatch for a few thousand pixels, so the per-view pipeline
(about 2 ms per image for 6 views, 0.6 ms of it in the hue shift) held 2-core
training at 0.62 of its model-only speed (bench/pipeline.py). Here each image's
random parameters are drawn per view, as torchvision's transforms draw them, the
crop is resized per view, and every colour operation then runs once on the
whole batch of views of one resolution, with per-view factors: about 0.5 ms per
image, and the pipeline no longer slows training (ratio 0.9-1.0). Each operation
matches its torchvision.transforms.v2.functional counterpart (checked in
tests/test_views_models.py).

Determinism: a sample's parameters come from its own `random.Random`, seeded
by (seed, epoch, index) in `SeededViews`, so its views do not depend on the
batch, the worker that loads it, nor on where a resumed run restarts.
"""

from __future__ import annotations

import math
import random
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode, v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision
SOLARIZE_THRESHOLD = 128 / 255  # torchvision's threshold 128 on uint8 images
CROP_RATIO = (3 / 4, 4 / 3)


class ViewSpec(NamedTuple):
    size: int
    scale: tuple[float, float]
    blur_p: float
    solarize_p: float


class ViewParams(NamedTuple):
    crop: tuple[int, int, int, int]  # top, left, height, width
    flip: bool
    jitter: bool
    brightness: float
    contrast: float
    saturation: float
    hue: float
    order: tuple[int, int, int, int]  # order of brightness (0), contrast (1), saturation (2), hue (3)
    gray: bool
    blur_sigma: float  # 0: no blur
    solarize: bool


def blur_kernel_size(image_size: int) -> int:
    """Odd kernel of about a tenth of the image side: DINO's 23 px at 224 px, 3 px at 32 px."""
    return 2 * (image_size // 20) + 1


# ---------------------------------------------------------------- random parameters


def sample_crop(rng: random.Random, height: int, width: int, scale) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box: area fraction in `scale`, log-uniform aspect in [3/4, 4/3],
    10 tries, then a central crop of the nearest allowed aspect (torchvision's algorithm)."""
    area = height * width
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    aspect = width / height
    if aspect < CROP_RATIO[0]:
        w, h = width, round(width / CROP_RATIO[0])
    elif aspect > CROP_RATIO[1]:
        h, w = height, round(height * CROP_RATIO[1])
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def sample_view(rng: random.Random, height: int, width: int, spec: ViewSpec) -> ViewParams:
    """One view's parameters: crop, flip p=0.5, ColorJitter(0.4, 0.4, 0.2, 0.1) p=0.8 in random
    order, grayscale p=0.2, blur p=spec.blur_p with sigma in [0.1, 2], solarise p=spec.solarize_p."""
    crop = sample_crop(rng, height, width, spec.scale)
    flip = rng.random() < 0.5
    jitter = rng.random() < 0.8
    brightness, contrast = rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.4)
    saturation, hue = rng.uniform(0.8, 1.2), rng.uniform(-0.1, 0.1)
    order = tuple(rng.sample(range(4), 4))
    gray = rng.random() < 0.2
    blur_sigma = rng.uniform(0.1, 2.0) if rng.random() < spec.blur_p else 0.0
    solarize = rng.random() < spec.solarize_p
    return ViewParams(crop, flip, jitter, brightness, contrast, saturation, hue, order, gray, blur_sigma, solarize)


# ---------------------------------------------------------------- operations on batches of views
# x: float (N, 3, h, w) in [0, 1]; factors: (N,) tensors, one per view


def crop_resize(image: torch.Tensor, crop, size: int) -> torch.Tensor:
    """uint8 (3, H, W) -> float (3, size, size) in [0, 1]: bicubic, antialiased, as RandomResizedCrop."""
    top, left, h, w = crop
    patch = image[None, :, top : top + h, left : left + w].float().div_(255)
    return F.interpolate(patch, size=(size, size), mode="bicubic", antialias=True, align_corners=False)[0].clamp_(0, 1)


def per_view(factor: torch.Tensor) -> torch.Tensor:
    return factor.view(-1, 1, 1, 1)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    weights = x.new_tensor(GRAY_WEIGHTS).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)  # (N, 1, h, w)


def blend(x: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """ratio * x + (1 - ratio) * other, clamped to [0, 1] (torchvision's _blend)."""
    ratio = per_view(ratio)
    return (ratio * x + (1 - ratio) * other).clamp_(0, 1)


def adjust_brightness(x, factor):
    return blend(x, torch.zeros_like(x), factor)


def adjust_contrast(x, factor):
    return blend(x, grayscale(x).mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_saturation(x, factor):
    return blend(x, grayscale(x), factor)


def adjust_hue(x, shift):
    """Rotate the hue (HSV, in turns) of each view by its shift in [-0.5, 0.5]."""
    value, argmax = x.max(dim=1)  # (N, h, w)
    delta = value - x.min(dim=1).values
    saturation = torch.where(value > 0, delta / value.clamp_min(1e-12), torch.zeros_like(value))
    r, g, b = x.unbind(dim=1)
    safe_delta = delta.clamp_min(1e-12)
    hue_sixths = torch.where(
        argmax == 0,
        ((g - b) / safe_delta) % 6,
        torch.where(argmax == 1, (b - r) / safe_delta + 2, (r - g) / safe_delta + 4),
    )
    hue_sixths = torch.where(delta > 0, hue_sixths, torch.zeros_like(hue_sixths))
    hue_sixths = (hue_sixths + 6 * shift.view(-1, 1, 1)) % 6
    # HSV -> RGB: channel n (R: 5, G: 3, B: 1) is v - v s clamp(min(k, 4 - k), 0, 1), k = (n + hue) mod 6
    k = (x.new_tensor([5.0, 3.0, 1.0]).view(1, 3, 1, 1) + hue_sixths[:, None]) % 6
    ramp = torch.minimum(k, 4 - k).clamp_(0, 1)
    return (value[:, None] * (1 - saturation[:, None] * ramp)).clamp_(0, 1)


def gaussian_blur(x, sigma, kernel_size: int):
    """Separable Gaussian blur, one sigma per view, reflect padding (torchvision's gaussian_blur)."""
    n, c, h, w = x.shape
    half = (kernel_size - 1) / 2
    offsets = torch.linspace(-half, half, kernel_size, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets[None] / sigma.view(-1, 1)) ** 2)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (N * 3, k)
    pad = kernel_size // 2
    flat = F.pad(x.reshape(1, n * c, h, w), (pad, pad, pad, pad), mode="reflect")
    flat = F.conv2d(flat, kernel.view(n * c, 1, 1, kernel_size), groups=n * c)
    flat = F.conv2d(flat, kernel.view(n * c, 1, kernel_size, 1), groups=n * c)
    return flat.view(n, c, h, w)


def solarize(x):
    return torch.where(x >= SOLARIZE_THRESHOLD, 1 - x, x)


COLOUR_JITTER = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def augment(x: torch.Tensor, params: list[ViewParams], *, size: int, mean, std) -> torch.Tensor:
    """Flip, colour jitter (each view's own order), grayscale, blur, solarise, normalise.
    x: float (N, 3, size, size) of cropped views, params: the N views' parameters."""

    def mask(values):
        return torch.tensor(values, dtype=torch.bool)

    def factors(name):
        return torch.tensor([getattr(p, name) for p in params], dtype=x.dtype)

    flip = mask([p.flip for p in params])
    x[flip] = x[flip].flip(-1)
    jitter = mask([p.jitter for p in params])
    jitter_factors = [factors("brightness"), factors("contrast"), factors("saturation"), factors("hue")]
    orders = torch.tensor([p.order for p in params])  # (N, 4)
    for position in range(4):
        for op_index, operation in enumerate(COLOUR_JITTER):
            chosen = jitter & (orders[:, position] == op_index)
            if chosen.any():
                x[chosen] = operation(x[chosen], jitter_factors[op_index][chosen])
    gray = mask([p.gray for p in params])
    x[gray] = grayscale(x[gray]).expand(-1, 3, -1, -1)
    kernel = blur_kernel_size(size)
    sigma = factors("blur_sigma")
    blurred = sigma > 0
    if kernel > 1 and blurred.any():  # a 1-px kernel would be the identity
        x[blurred] = gaussian_blur(x[blurred], sigma[blurred], kernel)
    solarized = mask([p.solarize for p in params])
    x[solarized] = solarize(x[solarized])
    return (x - x.new_tensor(mean).view(1, 3, 1, 1)) / x.new_tensor(std).view(1, 3, 1, 1)


# ---------------------------------------------------------------- the multi-crop transform


class MultiCropViews:
    """V = n_global + n_local views of an image, globals first.

    Global view 0: blur p=1.0; global view 1: blur p=0.1, solarise p=0.2; further
    global views alternate between the two; local views: blur p=0.5 (DINO).

    `views(image)`: uint8 (3, H, W) -> list of V float tensors (3, s, s), drawn from
    torch's global generator. `views.batch(images, rngs)`: the fast path, one
    random.Random per image -> (globals (Vg, B, 3, H, W), locals (Vl, B, 3, h, w)).
    """

    def __init__(
        self,
        *,
        n_global: int = 2,
        n_local: int = 8,
        global_size: int = 224,
        local_size: int = 96,
        global_scale: tuple[float, float] = (0.3, 1.0),
        local_scale: tuple[float, float] = (0.05, 0.3),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    ):
        if n_global < 1:
            raise ValueError(f"n_global must be >= 1, got {n_global}")
        if n_local < 0:
            raise ValueError(f"n_local must be >= 0, got {n_local}")
        for name, scale in (("global_scale", global_scale), ("local_scale", local_scale)):
            if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
                raise ValueError(f"{name} must satisfy 0 < low <= high <= 1, got {tuple(scale)}")
        self.n_global, self.n_local = n_global, n_local
        self.global_size, self.local_size = global_size, local_size
        self.mean, self.std = tuple(mean), tuple(std)
        global_specs = [
            ViewSpec(global_size, tuple(global_scale), blur_p=1.0, solarize_p=0.0),
            ViewSpec(global_size, tuple(global_scale), blur_p=0.1, solarize_p=0.2),
        ]
        self.specs = [global_specs[i % 2] for i in range(n_global)]
        self.specs += [ViewSpec(local_size, tuple(local_scale), blur_p=0.5, solarize_p=0.0)] * n_local

    def __call__(self, image: torch.Tensor) -> list[torch.Tensor]:
        rng = random.Random(int(torch.randint(0, 2**62, ())))
        global_views, local_views = self.batch([image], [rng])
        return list(global_views[:, 0]) + list(local_views[:, 0])

    def batch(self, images: list[torch.Tensor], rngs: list[random.Random]) -> tuple[torch.Tensor, torch.Tensor]:
        for image in images:
            if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
                raise ValueError(f"expected a uint8 image of shape (3, H, W), got {image.dtype} {tuple(image.shape)}")
        # all views of one image first, from that image's generator: a sample's views do not depend on the batch
        params = [
            [sample_view(rng, image.shape[1], image.shape[2], spec) for spec in self.specs]
            for image, rng in zip(images, rngs)
        ]
        groups = []
        for views, size in (
            (range(self.n_global), self.global_size),
            (range(self.n_global, len(self.specs)), self.local_size),
        ):
            group = [(image, p[v]) for v in views for image, p in zip(images, params)]  # view-major: (V, B)
            if not group:
                groups.append(torch.empty(0, len(images), 3, size, size))
                continue
            crops = torch.stack([crop_resize(image, view.crop, size) for image, view in group])
            x = augment(crops, [view for _, view in group], size=size, mean=self.mean, std=self.std)
            groups.append(x.view(len(views), len(images), 3, size, size))
        return groups[0], groups[1]


def eval_transform(size: int, *, crop_fraction: float = 1.0, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> v2.Compose:
    """Resize the shorter side to size / crop_fraction, center-crop size, float + normalise.

    crop_fraction=0.875 is the ImageNet protocol (resize 256, crop 224); the
    default 1.0 keeps the whole image, right for small pre-cropped datasets.
    """
    return v2.Compose(
        [
            v2.Resize(round(size / crop_fraction), interpolation=InterpolationMode.BICUBIC, antialias=True),
            v2.CenterCrop(size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=mean, std=std),
        ]
    )


# ---------------------------------------------------------------- the dataset side


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 64-bit seed for one sample of one epoch."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0])


class SeededViews(Dataset):
    """Wrap an image dataset (uint8 (3, H, W), label): item (epoch, index) -> its views.

    The sampler yields (epoch, index) pairs; the views of that sample are drawn from
    random.Random(sample_seed(seed, epoch, index)). A DataLoader fetches whole batches
    through `__getitems__`, so the colour operations run once per batch.
    Item: (global views (Vg, 3, H, W), local views (Vl, 3, h, w), label).
    """

    def __init__(self, images: Dataset, views: MultiCropViews, *, seed: int):
        self.images = images
        self.views = views
        self.seed = seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitems__(self, items: list[tuple[int, int]]):
        images, labels, rngs = [], [], []
        for epoch, index in items:
            image, label = self.images[index]
            images.append(image)
            labels.append(int(label))
            rngs.append(random.Random(sample_seed(self.seed, epoch, index)))
        global_views, local_views = self.views.batch(images, rngs)
        return [(global_views[:, i], local_views[:, i], labels[i]) for i in range(len(items))]

    def __getitem__(self, item: tuple[int, int]):
        return self.__getitems__([item])[0]


def collate_views(samples):
    """Stack per resolution: globals (Vg, B, 3, H, W), locals (Vl, B, 3, h, w), labels (B,)."""
    global_views = torch.stack([s[0] for s in samples], dim=1)
    local_views = torch.stack([s[1] for s in samples], dim=1)
    labels = torch.tensor([s[2] for s in samples], dtype=torch.long)
    return global_views, local_views, labels
