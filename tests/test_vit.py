"""ViTs in the engine (lejepa.models): global and local crops through one encoder with
interpolated positional embeddings, patch sizes, register tokens, the last block's [CLS]
attention against timm's own attention matrix, and a ViT trained and resumed by lejepa.train."""

import pytest
import torch
from conftest import crash_at_step

from lejepa import train
from lejepa.families import centers_for
from lejepa.models import Encoder, create_backbone, encoder_from_config, is_timm_vit, last_block_attention

# The settings of a tiny run on conftest's write_tiny_dataset (20-px images), with timm's test_vit.
VIT_CONFIG = dict(
    run="tiny_vit", dataset="tiny", backbone="test_vit", projector="32-16", small_stem="none",
    n_global=2, n_local=2, global_size=16, local_size=8, global_scale=[0.3, 1.0], local_scale=[0.05, 0.3],
    batch_size=16, epochs=2, warmup_epochs=0.5, max_steps_per_epoch=2,
    lr=1e-3, weight_decay=0.05, lam=0.05, num_slices=32, t_max=3.0, knots=17, centers="auto", seed=0,
    eval_split=None, device="cpu", threads=1, workers=0, progress=False, patch_size=4,
)  # fmt: skip


def vit_config(data_dir, out_dir, **overrides):
    return {**VIT_CONFIG, "data_dir": str(data_dir), "out_dir": str(out_dir), **overrides}


def test_which_backbones_are_timm_vits_and_their_centres():
    assert all(map(is_timm_vit, ["vit_tiny_patch16_224", "vit_small_patch8_224", "deit_tiny_patch16_224"]))
    assert not is_timm_vit("resnet18") and not is_timm_vit("swin_tiny_patch4_window7_224") and not is_timm_vit("nope")
    # algorithm 2: ViTs predict the mean of the global views, other backbones that of every view
    assert centers_for("auto", "vit_tiny_patch8_224") == "global"
    assert centers_for("auto", "resnet18") == "all"


@pytest.mark.parametrize(("side", "patch", "expected_grid"), [(16, 4, 4), (8, 4, 2), (10, 4, 3), (32, 8, 4)])
def test_patch_token_count_is_the_patch_grid(side, patch, expected_grid):
    backbone = create_backbone("test_vit", img_size=16, patch_size=patch).eval()
    with torch.no_grad():
        out = last_block_attention(backbone, torch.randn(2, 3, side, side))
    assert out["grid"] == (expected_grid, expected_grid)  # ceil(side / patch): a partial patch is padded
    assert out["patch_tokens"].shape == (2, expected_grid**2, backbone.num_features)
    assert out["cls_attention"].shape[-1] == 1 + expected_grid**2


@pytest.mark.parametrize("registers", [0, 1, 4])
def test_register_tokens_join_the_sequence_not_the_patches(registers):
    backbone = create_backbone("test_vit", img_size=16, patch_size=4, num_registers=registers).eval()
    with torch.no_grad():
        tokens = backbone.forward_features(torch.randn(1, 3, 16, 16))
        out = last_block_attention(backbone, torch.randn(1, 3, 16, 16))
    assert tokens.shape[1] == 1 + registers + 16
    assert out["num_prefix"] == 1 + registers and out["patch_tokens"].shape[1] == 16


def test_one_encoder_takes_global_and_local_crops_with_interpolated_positions():
    torch.manual_seed(0)
    encoder = Encoder("test_vit", projector="32-16", img_size=16, patch_size=4).eval()
    assert encoder.backbone.pos_embed.shape[1] == 1 + (16 // 4) ** 2  # made for the global views
    with torch.no_grad():
        for side in (16, 8):
            features, embedding = encoder(torch.randn(3, 3, side, side))
            assert features.shape == (3, 64) and embedding.shape == (3, 16)
        # the 8-px crop's positions are the 4x4 grid's, resampled to 2x2 (timm's resample_abs_pos_embed)
        from timm.layers import resample_abs_pos_embed

        backbone = encoder.backbone
        expected = resample_abs_pos_embed(backbone.pos_embed, new_size=(2, 2), num_prefix_tokens=1)
        seen = {}
        hook = backbone.pos_drop.register_forward_hook(lambda m, args, out: seen.setdefault("x", args[0]))
        patches = backbone.patch_embed(torch.zeros(1, 3, 8, 8))  # (1, 2, 2, D): bias only, same for every patch
        backbone.forward_features(torch.zeros(1, 3, 8, 8))
        hook.remove()
        with_cls = torch.cat([backbone.cls_token, patches.flatten(1, 2)], dim=1)
        torch.testing.assert_close(seen["x"], with_cls + expected)


@pytest.mark.parametrize("registers", [0, 2])
def test_cls_attention_is_timms_attention_matrix_row(registers):
    torch.manual_seed(1)
    backbone = create_backbone("test_vit", img_size=16, patch_size=4, num_registers=registers).eval()
    images = torch.randn(2, 3, 20, 12)  # not square, not a multiple of the patch on one side
    attention = backbone.blocks[-1].attn
    attention.fused_attn = False  # timm then forms softmax(q k^T * scale) itself, before attn_drop
    seen = {}
    hooks = [
        attention.attn_drop.register_forward_hook(lambda m, args, out: seen.setdefault("attn", out)),
        backbone.blocks[-1].norm1.register_forward_hook(lambda m, args, out: seen.setdefault("x", out)),
    ]
    with torch.no_grad():
        out = last_block_attention(backbone, images)
        # timm's own path to the last layer's normalised patch tokens
        (last,) = backbone.forward_intermediates(
            images, indices=1, norm=True, output_fmt="NLC", intermediates_only=True
        )
    for hook in hooks:
        hook.remove()
    assert out["grid"] == (5, 3)
    torch.testing.assert_close(out["patch_tokens"], last)
    torch.testing.assert_close(out["cls_attention"], seen["attn"][:, :, 0])  # (B, heads, T)
    torch.testing.assert_close(out["cls_attention"].sum(-1), torch.ones(2, attention.num_heads))
    # and from q and k by brute force, one head and one token at a time
    q, k, _ = attention.qkv(seen["x"]).detach().chunk(3, dim=-1)  # (B, T, heads * d) each
    d = attention.head_dim
    for b in range(2):
        for h in range(attention.num_heads):
            q_cls = q[b, 0, h * d : (h + 1) * d]
            scores = torch.stack([q_cls @ k[b, t, h * d : (h + 1) * d] for t in range(k.shape[1])]) / d**0.5
            torch.testing.assert_close(out["cls_attention"][b, h], torch.softmax(scores, 0))


def test_vit_only_settings_are_refused_elsewhere():
    with pytest.raises(ValueError, match="VisionTransformer"):
        create_backbone("test_resnet", patch_size=4)
    with pytest.raises(ValueError, match="num_registers"):
        train.check_config(vit_config("d", "o", num_registers=-1))
    with pytest.raises(ValueError, match="patch_size"):
        train.check_config(vit_config("d", "o", patch_size=-1))


def test_a_vit_trains_through_lejepa_train_and_resumes(tiny_dataset, tmp_path, monkeypatch, one_torch_thread):
    # a real ViT name (lejepa.families tells ViTs by name; timm's test_vit is not one)
    config = vit_config(tiny_dataset, tmp_path / "run", backbone="vit_tiny_patch16_224", num_registers=1,
                        checkpoint_every_steps=1)  # fmt: skip
    final = train.main(config)
    saved = torch.load(final, map_location="cpu", weights_only=False)
    history = saved["history"]
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(row["loss"])) for row in history)
    assert saved["config"]["centers"] == "global"  # a ViT: the global views are the centres
    encoder = encoder_from_config(saved["config"])
    encoder.load_state_dict(saved["encoder"])  # same shape: registers and patch size come from the config
    assert encoder.backbone.num_prefix_tokens == 2

    # resume: stop the run before its last step (a crash), rerun: it resumes and ends with the same weights
    resumed = config | {"out_dir": str(tmp_path / "resumed")}
    crash_at_step(train, resumed, step=3, monkeypatch=monkeypatch)
    assert torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)["step"] == 3
    again = torch.load(train.main(resumed), map_location="cpu", weights_only=False)
    for key, value in saved["encoder"].items():
        torch.testing.assert_close(again["encoder"][key], value, rtol=0, atol=0, msg=key)
