"""The LeJEPA encoder: any timm backbone followed by a projector MLP.

SIGReg and the prediction loss act on the projector output (the embedding);
linear probes use the backbone output (the features). Paper, section 6 and
table 4: the default projector has 3 layers, 2048 hidden units with BN+ReLU and
a 128-d output.

Small inputs. A standard ResNet stem (7x7 stride-2 conv, then a stride-2
max-pool) divides the side by 4 before the first stage and by 32 in total, so
a 32-px CIFAR image ends as a 1x1 map. `small_stem` switches the stem of timm
ResNets:

    "none"             the standard stem (32 px -> 8 px after the stem, 1x1 at the end)
    "cifar"            3x3 stride-1 conv, no max-pool (32 -> 32, 4x4 at the end);
                       the usual CIFAR ResNet, about 16x the FLOPs of "none"
    "stride1_maxpool"  3x3 stride-1 conv, max-pool kept (32 -> 16, 2x2 at the end);
                       a middle ground, about 4x the FLOPs of "none"

Measured on a 2-core CPU (resnet18, batch 256): the CIFAR stem ran about
10-12x slower per image than the standard one, so the CPU `small` scale keeps
"none"; on a GPU "cifar" is the usual choice for 32-px images.
"""

from __future__ import annotations

import os
import pickle

import timm
import torch
import torch.distributed as dist
from torch import nn

from lejepa.sigreg import global_count, global_sum

SMALL_STEMS = ("none", "cifar", "stride1_maxpool")


def projector_mlp(in_dim: int, spec: str) -> nn.Sequential:
    """'2048-2048-128' -> Linear-BN-ReLU, Linear-BN-ReLU, Linear (the last layer is bare).

    The hidden Linear layers have no bias: BN removes it anyway, and a parameter
    whose gradient is zero only up to rounding would make AdamW take noise-driven
    steps of size ~lr on it."""
    try:
        dims = [in_dim] + [int(d) for d in str(spec).split("-")]
    except ValueError:
        raise ValueError(f"projector must look like '2048-2048-128', got {spec!r}") from None
    if any(d < 1 for d in dims[1:]):
        raise ValueError(f"projector layer sizes must be positive, got {spec!r}")
    layers = []
    for d_in, d_out in zip(dims[:-2], dims[1:-1]):
        layers += [nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(dims[-2], dims[-1]))
    return nn.Sequential(*layers)


def apply_small_stem(backbone: nn.Module, small_stem: str) -> None:
    """Replace a timm ResNet's stem in place (see the module docstring)."""
    if small_stem not in SMALL_STEMS:
        raise ValueError(f"small_stem must be one of {SMALL_STEMS}, got {small_stem!r}")
    if small_stem == "none":
        return
    stem_conv = getattr(backbone, "conv1", None)
    if not isinstance(stem_conv, nn.Conv2d) or not hasattr(backbone, "maxpool"):
        raise ValueError(
            f"small_stem={small_stem!r} needs a timm ResNet with a single-conv stem "
            f"(conv1 + maxpool); {type(backbone).__name__} has none"
        )
    backbone.conv1 = nn.Conv2d(3, stem_conv.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    if small_stem == "cifar":
        backbone.maxpool = nn.Identity()


class Encoder(nn.Module):
    """timm backbone (num_classes=0) + projector. forward(x) -> (features (B, F), embedding (B, K))."""

    def __init__(
        self, backbone: str, *, projector: str = "2048-2048-128", small_stem: str = "none", pretrained: bool = False
    ):
        super().__init__()
        try:
            self.backbone = timm.create_model(backbone, pretrained=pretrained, num_classes=0)
        except RuntimeError as error:  # timm's "Unknown model" is a RuntimeError
            raise ValueError(f"backbone {backbone!r}: {error}") from error
        apply_small_stem(self.backbone, small_stem)
        self.feature_dim = self.backbone.num_features
        self.projector = projector_mlp(self.feature_dim, projector)
        self.embedding_dim = self.projector[-1].out_features

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(x)  # (B, F)
        return features, self.projector(features)  # (B, F), (B, K)


def encoder_from_config(config: dict) -> Encoder:
    """Build the encoder a run config describes (keys backbone, projector, small_stem)."""
    return Encoder(config["backbone"], projector=config["projector"], small_stem=config["small_stem"])


def load_encoder(checkpoint_path: str | os.PathLike) -> tuple[Encoder, dict]:
    """Load a pretrained encoder from runs/<run>/final.pt or checkpoint.pt -> (encoder in eval mode, run config)."""
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise ValueError(f"cannot read checkpoint {checkpoint_path}: {error}") from error
    if not isinstance(checkpoint, dict) or "encoder" not in checkpoint or "config" not in checkpoint:
        raise ValueError(f"{checkpoint_path} is not a LeJEPA checkpoint (needs keys 'encoder' and 'config')")
    config = checkpoint["config"]
    encoder = encoder_from_config(config)
    encoder.load_state_dict(checkpoint["encoder"])
    return encoder.eval(), config


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch (all processes).

    nn.SyncBatchNorm does the same with fused kernels but refuses CPU tensors; this
    one runs anywhere (gloo on CPU). Two all-reduces per call: the mean, then the
    centred sum of squares. The collectives' backward sums gradients over processes
    (lejepa.sigreg's convention), so with DDP's averaging the gradients equal those of
    one process holding the whole batch.
    """

    def _check_input_dim(self, x):
        if x.dim() not in (2, 3, 4, 5):
            raise ValueError(f"expected a (N, C, ...) input, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        reduce_dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)  # broadcast (C,) over (N, C, ...)
        count = global_count(x.numel() // x.shape[1], like=x)
        mean = global_sum(x.sum(reduce_dims)) / count  # (C,)
        centered = x - mean.view(shape)
        var = global_sum((centered * centered).sum(reduce_dims)) / count  # biased, as BN normalises
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(var.detach() * count / (count - 1), momentum)  # unbiased, as BN stores
        out = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def convert_sync_batchnorm(module: nn.Module, *, device_type: str) -> nn.Module:
    """Every BatchNorm -> one on global-batch statistics: nn.SyncBatchNorm on GPU,
    GlobalBatchNorm on CPU. Parameters and running statistics are kept."""
    if device_type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        converted = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        converted.load_state_dict(module.state_dict())
        return converted
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device_type=device_type))
    return module
