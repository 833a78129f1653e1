"""Views (lejepa.views) and the encoder (lejepa.models): shapes, determinism, stems, checkpoints,
and the CPU global-batch BatchNorm against nn.BatchNorm on the whole batch."""

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from lejepa import views as V
from lejepa.models import SMALL_STEMS, Encoder, GlobalBatchNorm, convert_sync_batchnorm, load_encoder, projector_mlp
from lejepa.views import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MultiCropViews,
    SeededViews,
    blur_kernel_size,
    collate_views,
    eval_transform,
)

REPO = Path(__file__).resolve().parents[1]


def random_image(height=40, width=48, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator)


class ListImages(torch.utils.data.Dataset):
    def __init__(self, n):
        self.images = [random_image(seed=i) for i in range(n)]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], index % 3


# ---------------------------------------------------------------- batched operations vs torchvision


def random_views(n=5, size=12, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "ours, reference, factors",
    [
        (V.adjust_brightness, TF.adjust_brightness, [0.6, 0.9, 1.0, 1.2, 1.4]),
        (V.adjust_contrast, TF.adjust_contrast, [0.6, 0.9, 1.0, 1.2, 1.4]),
        (V.adjust_saturation, TF.adjust_saturation, [0.8, 0.9, 1.0, 1.1, 1.2]),
        (V.adjust_hue, TF.adjust_hue, [-0.1, -0.03, 0.0, 0.05, 0.1]),
    ],
)
def test_colour_operations_match_torchvision_per_view(ours, reference, factors):
    x = random_views()
    x[1, :, :4] = 0.5  # grey pixels: zero saturation, hue undefined
    x[2, 0] = x[2, 1]  # ties between channels
    out = ours(x.clone(), torch.tensor(factors))
    expected = torch.stack([reference(x[i], factor) for i, factor in enumerate(factors)])
    torch.testing.assert_close(out, expected, atol=2e-6, rtol=0)


def test_grayscale_blur_solarize_crop_match_torchvision():
    x = random_views()
    torch.testing.assert_close(V.grayscale(x), TF.rgb_to_grayscale(x), atol=1e-6, rtol=0)
    sigmas = [0.1, 0.5, 1.0, 1.7, 2.0]
    for kernel in (3, 5):
        out = V.gaussian_blur(x, torch.tensor(sigmas), kernel)
        expected = torch.stack([TF.gaussian_blur(x[i], [kernel, kernel], [s, s]) for i, s in enumerate(sigmas)])
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(V.solarize(x), TF.solarize(x, threshold=128 / 255), atol=0, rtol=0)
    image = random_image()
    crop = (3, 5, 20, 30)
    expected = TF.resized_crop(
        image.float() / 255, *crop, size=[16, 16], interpolation=InterpolationMode.BICUBIC, antialias=True
    ).clamp(0, 1)
    torch.testing.assert_close(V.crop_resize(image, crop, 16), expected, atol=1e-6, rtol=0)


def test_augment_applies_each_views_jitter_order_like_torchvision():
    """One batch of views with different parameters == torchvision's functional ops applied
    to each view alone in its own order, then grayscale, blur, solarise, normalise."""
    import random

    rng = random.Random(0)
    x = random_views(n=6, size=12)
    params = [
        V.sample_view(rng, 12, 12, V.ViewSpec(12, (0.3, 1.0), blur_p=0.5, solarize_p=0.5))._replace(jitter=j, gray=g)
        for j, g in [(True, False), (True, False), (True, True), (False, False), (True, False), (False, True)]
    ]
    out = V.augment(x.clone(), params, size=24, mean=IMAGENET_MEAN, std=IMAGENET_STD)  # size 24: 3-px blur
    reference_ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    for i, p in enumerate(params):
        y = x[i].flip(-1) if p.flip else x[i]
        if p.jitter:
            for op in p.order:
                y = reference_ops[op](y, [p.brightness, p.contrast, p.saturation, p.hue][op])
        if p.gray:
            y = TF.rgb_to_grayscale(y, num_output_channels=3)
        if p.blur_sigma > 0:
            y = TF.gaussian_blur(y, [3, 3], [p.blur_sigma, p.blur_sigma])
        if p.solarize:
            y = TF.solarize(y, threshold=128 / 255)
        y = TF.normalize(y, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        torch.testing.assert_close(out[i], y, atol=1e-5, rtol=0, msg=f"view {i}: {p}")


def test_sampled_parameters_follow_the_recipe():
    import random

    rng = random.Random(1)
    spec = V.ViewSpec(16, (0.05, 0.3), blur_p=0.5, solarize_p=0.2)
    params = [V.sample_view(rng, 40, 48, spec) for _ in range(4000)]
    for p in params:
        top, left, h, w = p.crop
        assert 0 <= top and top + h <= 40 and 0 <= left and left + w <= 48
        # rounding of the side lengths widens the bounds a little for small crops
        assert 0.05 * 0.8 <= h * w / (40 * 48) <= 0.3 * 1.2 and 3 / 4 * 0.8 <= w / h <= 4 / 3 * 1.25
        assert 0.6 <= p.brightness <= 1.4 and 0.6 <= p.contrast <= 1.4 and 0.8 <= p.saturation <= 1.2
        assert -0.1 <= p.hue <= 0.1 and sorted(p.order) == [0, 1, 2, 3]
        assert p.blur_sigma == 0 or 0.1 <= p.blur_sigma <= 2.0

    def rate(values):
        return sum(values) / len(values)

    # Bernoulli rates within 4 standard errors of their probabilities (n = 4000)
    for name, probability in [("flip", 0.5), ("jitter", 0.8), ("gray", 0.2), ("solarize", 0.2)]:
        assert abs(rate([getattr(p, name) for p in params]) - probability) < 4 * math.sqrt(
            probability * (1 - probability) / 4000
        ), name
    assert abs(rate([p.blur_sigma > 0 for p in params]) - 0.5) < 4 * math.sqrt(0.25 / 4000)
    # a crop that cannot have the asked area and aspect falls back to a central crop of the allowed aspect
    assert V.sample_crop(random.Random(0), 4, 100, (0.9, 1.0)) == (
        0,
        (100 - round(4 * 4 / 3)) // 2,
        4,
        round(4 * 4 / 3),
    )


# ---------------------------------------------------------------- views


def test_multicrop_counts_shapes_and_order():
    views = MultiCropViews(n_global=2, n_local=3, global_size=32, local_size=16)(random_image())
    assert len(views) == 5
    assert [tuple(v.shape) for v in views] == [(3, 32, 32)] * 2 + [(3, 16, 16)] * 3  # globals first
    assert all(v.dtype == torch.float32 for v in views)


def test_multicrop_only_globals_and_three_globals():
    views = MultiCropViews(n_global=3, n_local=0, global_size=24, local_size=8)(random_image())
    assert [tuple(v.shape) for v in views] == [(3, 24, 24)] * 3


def test_multicrop_rejects_bad_input():
    views = MultiCropViews(n_global=2, n_local=1, global_size=16, local_size=8)
    with pytest.raises(ValueError, match="uint8"):
        views(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="local_scale"):
        MultiCropViews(local_scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="n_global"):
        MultiCropViews(n_global=0)


def test_blur_kernel_scales_with_size():
    assert blur_kernel_size(224) == 23  # DINO's kernel at 224 px
    assert blur_kernel_size(32) == 3
    assert blur_kernel_size(16) % 2 == 1


def test_eval_transform_is_resize_crop_normalise():
    # a uniform image stays uniform through resize and crop: the output is the closed-form normalisation
    value = torch.tensor([10, 128, 250], dtype=torch.uint8)
    image = value.view(3, 1, 1).expand(3, 40, 48).contiguous()
    out = eval_transform(32)(image)
    assert out.shape == (3, 32, 32)
    expected = (value.double() / 255 - torch.tensor(IMAGENET_MEAN, dtype=torch.double)) / torch.tensor(
        IMAGENET_STD, dtype=torch.double
    )
    torch.testing.assert_close(out.double().mean(dim=(1, 2)), expected, atol=1e-5, rtol=0)
    assert eval_transform(32, crop_fraction=0.875)(image).shape == (3, 32, 32)


def test_seeded_views_depend_on_seed_epoch_index_only():
    images = ListImages(4)
    views = MultiCropViews(n_global=2, n_local=2, global_size=16, local_size=8)
    dataset = SeededViews(images, views, seed=7)
    torch.manual_seed(123)
    expected_next_draw = torch.rand(3)
    torch.manual_seed(123)
    first = dataset[(0, 2)]
    again = dataset[(0, 2)]
    # the caller's generator is untouched by the augmentation
    torch.testing.assert_close(torch.rand(3), expected_next_draw, rtol=0, atol=0)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1]) and first[2] == again[2] == 2
    assert not torch.equal(first[0], dataset[(1, 2)][0])  # another epoch, other views
    # a sample's views do not depend on the batch it is fetched in (nor, hence, on the workers)
    in_batch = dataset.__getitems__([(0, 3), (0, 2), (1, 0)])[1]
    assert torch.equal(in_batch[0], first[0]) and torch.equal(in_batch[1], first[1])
    assert not torch.equal(first[0], SeededViews(images, views, seed=8)[(0, 2)][0])  # another seed


def test_collate_stacks_per_resolution():
    dataset = SeededViews(ListImages(5), MultiCropViews(n_global=2, n_local=3, global_size=16, local_size=8), seed=0)
    global_views, local_views, labels = collate_views([dataset[(0, i)] for i in range(5)])
    assert global_views.shape == (2, 5, 3, 16, 16)
    assert local_views.shape == (3, 5, 3, 8, 8)
    assert labels.tolist() == [0, 1, 2, 0, 1]
    # view v of sample b is what the dataset gave for that sample
    assert torch.equal(global_views[1, 3], dataset[(0, 3)][0][1])

    no_locals = SeededViews(ListImages(2), MultiCropViews(n_global=2, n_local=0, global_size=16, local_size=8), seed=0)
    _, local_views, _ = collate_views([no_locals[(0, i)] for i in range(2)])
    assert local_views.shape[0] == 0


# ---------------------------------------------------------------- encoder


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


def test_projector_layers_and_size():
    mlp = projector_mlp(512, "64-32-8")
    kinds = [type(m).__name__ for m in mlp]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    # closed form: hidden Linear layers without bias (BN follows), 2 affine params per BN unit, output Linear with bias
    assert count_parameters(mlp) == 512 * 64 + 2 * 64 + 64 * 32 + 2 * 32 + 32 * 8 + 8
    assert count_parameters(projector_mlp(512, "16")) == 512 * 16 + 16
    for bad in ("", "64-x", "0-8"):
        with pytest.raises(ValueError, match="projector"):
            projector_mlp(512, bad)


@pytest.mark.parametrize("stem, final_side", [("none", 1), ("cifar", 4), ("stride1_maxpool", 2)])
def test_small_stems_final_map(stem, final_side):
    # resnet18 downsamples 32x with the standard stem; the cifar stem removes 4x, stride1_maxpool 2x
    encoder = Encoder("resnet18", projector="32-16", small_stem=stem).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert encoder.backbone.forward_features(x).shape == (2, 512, final_side, final_side)
        features, embedding = encoder(x)
    assert features.shape == (2, 512) and embedding.shape == (2, 16)
    assert encoder.feature_dim == 512 and encoder.embedding_dim == 16


FIGURE9_RUNS = {  # one timm model per family (config/pretrain.yaml, tinyimagenet10_<model>)
    name: run
    for name, run in yaml.safe_load((Path(__file__).parents[1] / "config" / "pretrain.yaml").read_text())["pretrain"][
        "runs"
    ].items()
    if name.startswith("tinyimagenet10_")
}


@pytest.mark.parametrize("name", sorted(FIGURE9_RUNS))
def test_feature_dim_is_the_width_the_backbone_returns(name):
    """The projector is built on feature_dim, so it must be what forward returns; MobileNetV3's
    num_features (960) is not (it returns its 1280-wide pre-logits head)."""
    run = FIGURE9_RUNS[name]
    size = run["global_size"]
    encoder = Encoder(run["backbone"], projector="16", img_size=size, patch_size=run.get("patch_size", 0)).eval()
    with torch.no_grad():
        features, embedding = encoder(torch.randn(2, 3, size, size))
    assert features.shape == (2, encoder.feature_dim) and embedding.shape == (2, 16)


def test_encoder_errors_name_the_value():
    with pytest.raises(ValueError, match="no_such_net"):
        Encoder("no_such_net")
    with pytest.raises(ValueError, match="small_stem"):
        Encoder("test_vit", small_stem="cifar")
    with pytest.raises(ValueError, match="small_stem"):
        Encoder("test_resnet", small_stem="tiny")
    assert set(SMALL_STEMS) == {"none", "cifar", "stride1_maxpool"}


def test_load_encoder_round_trip(tmp_path):
    config = {"backbone": "test_resnet", "projector": "16-8", "small_stem": "none", "run": "x"}
    torch.manual_seed(0)
    encoder = Encoder("test_resnet", projector="16-8")
    encoder.train()(torch.randn(8, 3, 16, 16))  # move the BN running statistics away from their init
    torch.save({"config": config, "encoder": encoder.state_dict()}, tmp_path / "final.pt")
    loaded, loaded_config = load_encoder(tmp_path / "final.pt")
    assert loaded_config == config and not loaded.training
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        for a, b in zip(encoder.eval()(x), loaded(x)):
            assert torch.equal(a, b)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_encoder(tmp_path / "bad.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt"):
        load_encoder(tmp_path / "other.pt")


def test_convert_keeps_parameters_and_is_plain_bn_on_one_process():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(5), nn.BatchNorm1d(5))
    x = torch.randn(6, 3, 8, 8)
    model(x)
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
    expected = model(x)
    reference = [p.clone() for p in model.state_dict().values()]
    converted = convert_sync_batchnorm(model, device_type="cpu")
    assert isinstance(converted[1], GlobalBatchNorm) and isinstance(converted[4], GlobalBatchNorm)
    assert all(torch.equal(a, b) for a, b in zip(reference, converted.state_dict().values()))
    torch.testing.assert_close(converted(x), expected)  # no process group: same as nn.BatchNorm


def _global_bn_worker(rank, world_size, init_file, x, grad_out, queue):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    torch.manual_seed(0)
    bn = GlobalBatchNorm(4)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    shard = x.chunk(world_size)[rank].clone().requires_grad_(True)
    out = bn(shard)
    out.backward(grad_out.chunk(world_size)[rank])
    # numpy arrays travel by value (tensors would point to this process's shared memory)
    queue.put((rank, out.detach().numpy(), shard.grad.numpy(), bn.running_mean.numpy(), bn.running_var.numpy()))
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_global_batchnorm_two_processes_equals_batchnorm_on_whole_batch(tmp_path):
    """2 gloo processes holding half a batch each == nn.BatchNorm2d on the whole batch:
    outputs, input gradients and running statistics (independent reference: torch's BN)."""
    torch.manual_seed(1)
    x = torch.randn(6, 4, 5, 5) * 3 + 1
    grad_out = torch.randn(6, 4, 5, 5)
    torch.manual_seed(0)
    reference = nn.BatchNorm2d(4)
    with torch.no_grad():
        reference.weight.uniform_(0.5, 1.5)
        reference.bias.uniform_(-1, 1)
    x_ref = x.clone().requires_grad_(True)
    out_ref = reference(x_ref)
    out_ref.backward(grad_out)

    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    mp.start_processes(
        _global_bn_worker, args=(2, str(tmp_path / "init"), x, grad_out, queue), nprocs=2, start_method="spawn"
    )
    results = {r[0]: [torch.from_numpy(a) for a in r[1:]] for r in (queue.get(), queue.get())}
    out = torch.cat([results[0][0], results[1][0]])
    grad = torch.cat([results[0][1], results[1][1]])
    torch.testing.assert_close(out, out_ref.detach(), atol=1e-5, rtol=1e-5)
    # each process's input gradient, before any DDP averaging, is that of the whole-batch loss
    torch.testing.assert_close(grad, x_ref.grad, atol=1e-5, rtol=1e-5)
    for rank in (0, 1):
        torch.testing.assert_close(results[rank][2], reference.running_mean, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(results[rank][3], reference.running_var, atol=1e-6, rtol=1e-5)


def pipeline_bench_blocks() -> dict:
    """bench/results/pipeline.txt -> {workers setting: (ratios of the repeats, printed median)}."""
    blocks, setting = {}, None
    for line in (REPO / "bench" / "results" / "pipeline.txt").read_text().splitlines():
        if line.startswith("# commit"):
            setting = re.search(r"\d+ workers \((\w+)\)", line).group(1)
            blocks[setting] = ([], None)
        elif line.startswith("repeat"):
            blocks[setting][0].append(float(re.search(r"ratio ([\d.]+)", line).group(1)))
        elif line.startswith("ratio_vs_model_only"):
            blocks[setting] = (blocks[setting][0], float(line.split()[-1]))
    return blocks


def test_readme_pipeline_ratios_match_the_committed_bench_output():
    readme = " ".join((REPO / "README.md").read_text().split())
    blocks = pipeline_bench_blocks()
    for setting, (ratios, median) in blocks.items():
        assert median == pytest.approx(np.median(ratios), abs=5e-4), setting
        span = f"{median:.3f} (from {min(ratios):.3f} to {max(ratios):.3f})"
        assert span in readme, span
    assert len(blocks["auto"][0]) == len(blocks["1"][0]) == 5 and "5 repeats" in readme
