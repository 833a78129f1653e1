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

Vision transformers (timm's VisionTransformer and DeiT, `is_timm_vit`). The paper feeds
global (224 px) and local (96 px) crops through one encoder; here the ViT is built with
`dynamic_img_size=True`, so its positional embeddings, made for the global resolution
(`img_size`), are interpolated to each input's patch grid, and `dynamic_img_pad=True`,
so a side that the patch does not divide is zero-padded up to the next multiple (96 px
at patch 14 -> 7 x 7 patches, as the official README's 98-px crops). `patch_size`
replaces the name's patch (e.g. 4 for 32-px images) and `num_registers` adds register
tokens (Darcet et al.; the paper's table 1e). `last_block_attention` returns the last
block's patch tokens and the [CLS] token's attention, for figures 13 and 14.

Heads for table 4 (both off by default): `predictor`, an MLP from the embedding to the
embedding (hidden sizes, e.g. "2048"), through which every view predicts the centre;
the stochastic weight average of the encoder lives in lejepa.train (`swa_decay`).
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
# timm modules whose models are VisionTransformer (dynamic image size, patch size, register tokens)
TIMM_VIT_MODULES = ("timm.models.vision_transformer", "timm.models.deit")
# timm modules whose models take one input resolution only, fixed by img_size (LeViT's attention biases)
ONE_RESOLUTION_MODULES = ("timm.models.levit",)


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


def timm_module(backbone: str) -> str | None:
    """The timm module that defines `backbone` (None for a name timm does not know)."""
    try:
        return timm.models.model_entrypoint(backbone).__module__
    except (RuntimeError, KeyError):  # unknown name: timm.create_model says so
        return None


def is_timm_vit(backbone: str) -> bool:
    """Whether timm builds `backbone` as a VisionTransformer (ViT, DeiT; not Swin, LeViT, ...)."""
    return timm_module(backbone) in TIMM_VIT_MODULES


def create_backbone(
    backbone: str,
    *,
    img_size: int | None = None,
    patch_size: int = 0,
    num_registers: int = 0,
    pretrained: bool = False,
) -> nn.Module:
    """timm model without classifier (num_classes=0); a ViT with dynamic image size (module docstring)."""
    kwargs = {}
    if is_timm_vit(backbone):
        kwargs = {"dynamic_img_size": True, "dynamic_img_pad": True}
        if img_size:
            kwargs["img_size"] = img_size  # the positional embeddings' grid: global views'
        if patch_size:
            kwargs["patch_size"] = patch_size
        if num_registers:
            kwargs["reg_tokens"] = num_registers
    elif patch_size or num_registers:
        raise ValueError(
            f"patch_size and num_registers need a timm VisionTransformer (vit_*, deit_*), got {backbone!r}"
        )
    elif img_size and timm_module(backbone) in ONE_RESOLUTION_MODULES:
        kwargs["img_size"] = img_size  # LeViT: every view must then be of this size (local_size = global_size)
    try:
        return timm.create_model(backbone, pretrained=pretrained, num_classes=0, **kwargs)
    except RuntimeError as error:  # timm's "Unknown model" is a RuntimeError
        raise ValueError(f"backbone {backbone!r}: {error}") from error


class Encoder(nn.Module):
    """timm backbone (num_classes=0) + projector (+ an optional predictor).

    forward(x) -> (features (B, F), embedding (B, K)). `predictor` ("none" or hidden sizes such
    as "2048") adds `self.predictor`, an MLP K -> hidden -> K that lejepa.train applies to every
    view's embedding before the prediction loss (table 4); "none" leaves `self.predictor` None.
    """

    def __init__(
        self, backbone: str, *, projector: str = "2048-2048-128", small_stem: str = "none", pretrained: bool = False,
        img_size: int | None = None, patch_size: int = 0, num_registers: int = 0, predictor: str = "none",
    ):  # fmt: skip
        super().__init__()
        self.backbone = create_backbone(
            backbone, img_size=img_size, patch_size=patch_size, num_registers=num_registers, pretrained=pretrained
        )
        apply_small_stem(self.backbone, small_stem)
        # what forward returns: timm's num_features is the last block's width, and models with a
        # pre-logits head (MobileNetV3: 960 -> 1280) return head_hidden_size features instead
        self.feature_dim = getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features
        self.projector = projector_mlp(self.feature_dim, projector)
        self.embedding_dim = self.projector[-1].out_features
        self.predictor = None
        if predictor != "none":
            self.predictor = projector_mlp(self.embedding_dim, f"{predictor}-{self.embedding_dim}")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(x)  # (B, F)
        return features, self.projector(features)  # (B, F), (B, K)


def encoder_from_config(config: dict) -> Encoder:
    """Build the encoder a run config describes (keys backbone, projector, small_stem, and where
    given global_size, patch_size, num_registers, predictor)."""
    return Encoder(
        config["backbone"],
        projector=config["projector"],
        small_stem=config["small_stem"],
        img_size=config.get("global_size"),
        patch_size=config.get("patch_size", 0),
        num_registers=config.get("num_registers", 0),
        predictor=config.get("predictor", "none"),
    )


def last_block_attention(backbone: nn.Module, images: torch.Tensor) -> dict:
    """A timm ViT's last-layer patch tokens and its [CLS] token's attention in the last block.

    Returns a dict:
        patch_tokens   (B, h * w, D): the final-norm output at the patch positions
        cls_attention  (B, heads, T): softmax(q_cls k^T / sqrt(d)) of the last block over all
                       T = prefix + h * w tokens ([CLS], registers, patches; each row sums to 1)
        num_prefix     number of prefix tokens ([CLS] + registers) before the patches
        grid           (h, w): the patch grid, ceil(H / p) x ceil(W / p)

    The attention is recomputed explicitly from the last block's normalised input (a forward
    pre-hook on `blocks[-1].attn`), because timm's fused attention never forms it.
    """
    attention = backbone.blocks[-1].attn
    captured = {}
    hook = attention.register_forward_pre_hook(lambda module, args: captured.setdefault("x", args[0]))
    try:
        tokens = backbone.forward_features(images)  # (B, T, D)
    finally:
        hook.remove()
    x = captured["x"]  # (B, T, D), after blocks[-1].norm1
    batch, num_tokens, _ = x.shape
    qkv = attention.qkv(x).reshape(batch, num_tokens, 3, attention.num_heads, attention.head_dim)
    q, k = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)  # (B, heads, T, d)
    q, k = attention.q_norm(q), attention.k_norm(k)
    cls_scores = (q[:, :, :1] * attention.scale) @ k.transpose(-2, -1)  # (B, heads, 1, T)
    num_prefix = backbone.num_prefix_tokens
    grid = tuple(backbone.patch_embed.dynamic_feat_size(images.shape[-2:]))
    return {
        "patch_tokens": tokens[:, num_prefix:],
        "cls_attention": cls_scores.softmax(dim=-1)[:, :, 0],
        "num_prefix": num_prefix,
        "grid": grid,
    }


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
