"""Table 4, figure 9 and figures 13, 14 and 1 (bottom left): the PCA and the attention mask
against numpy and brute force, the table's transcription of the paper, the plans at the small
and paper scales, and the tiny scale built end to end through Snakemake."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import FASTER_TINY_SCALE, output_of, run_snakemake, write_yaml

from lejepa.segmentation import attention_mass_mask, augmented_frames, mask_iou, patch_attention, pca_rgb

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "datasets"
TABLES = yaml.safe_load((REPO / "config" / "tables.yaml").read_text())["tables"]


# ---------------------------------------------------------------- PCA and masks


def test_pca_rgb_matches_numpy_svd():
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(12, 7)) @ np.diag([5.0, 3.0, 2.0, 1.0, 0.5, 0.2, 0.1])  # distinct variances
    rgb, explained = pca_rgb(torch.tensor(tokens, dtype=torch.float32), grid=(3, 4))
    centred = tokens - tokens.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    for k in range(3):
        projection = centred @ vt[k]
        if np.abs(vt[k]).max() != vt[k][np.abs(vt[k]).argmax()]:  # the largest loading made positive
            projection = -projection
        expected = (projection - projection.min()) / (projection.max() - projection.min())
        np.testing.assert_allclose(rgb[..., k].numpy().ravel(), expected, atol=1e-5)
    np.testing.assert_allclose(explained.numpy(), s[:3] ** 2 / (s**2).sum(), rtol=1e-5)
    assert rgb.shape == (3, 4, 3) and rgb.min() == 0 and rgb.max() == 1


def test_attention_mask_keeps_the_fewest_patches_holding_the_mass_by_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(2, 8))
        attention = rng.dirichlet(np.ones(n))
        keep = float(rng.uniform(0.1, 1.0))
        mask = attention_mass_mask(torch.tensor(attention), keep=keep).numpy()
        smallest = None  # the smallest subsets holding >= keep of the mass, over all subsets
        for size in range(1, n + 1):
            subsets = itertools.combinations(range(n), size)
            holding = [set(c) for c in subsets if attention[list(c)].sum() >= keep - 1e-9]
            if holding:
                smallest = holding
                break
        assert set(np.flatnonzero(mask)) in smallest


def test_patch_attention_drops_prefix_tokens_and_averages_heads():
    cls_attention = torch.softmax(torch.randn(2, 3, 1 + 2 + 6), dim=-1)  # [CLS], 2 registers, 6 patches
    out = patch_attention(cls_attention, num_prefix=3)
    expected = cls_attention[:, :, 3:].mean(1)
    torch.testing.assert_close(out, expected / expected.sum(-1, keepdim=True))
    assert mask_iou(torch.tensor([True, False, True]), torch.tensor([True, True, False])) == pytest.approx(1 / 3)


def test_frames_keep_the_geometry_and_frame_0_is_the_image():
    image = torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8)
    frames, shown = augmented_frames(image, n_frames=4, size=16, seed=0)
    assert frames.shape == shown.shape == (4, 3, 16, 16)
    whole = torch.nn.functional.interpolate(image[None].float() / 255, size=(16, 16), mode="bicubic",
                                            antialias=True, align_corners=False).clamp(0, 1)[0]  # fmt: skip
    torch.testing.assert_close(shown[0], whole, atol=1e-5, rtol=0)
    assert not torch.allclose(shown[1:], whole.expand(3, -1, -1, -1))


# ---------------------------------------------------------------- the paper's table 4


def test_table4_transcribes_the_papers_range_and_rows():
    rows = TABLES["table4"]["rows"]
    values = [v for row in rows.values() for v in row.get("paper", {}).get("linear", [])]
    assert len(values) == 36 and min(values) == 67.74 and max(values) == 84.12  # TARGETS.md: 67.74-84.12
    assert rows["swa"]["paper"]["linear"][5] == 84.12  # vit_small_patch8, 3 layers, SWA
    assert rows["plain"]["paper"]["linear"][:3] == [79.71, 82.44, 83.93]  # resnet50, no predictor, no SWA


def test_table4_runs_vary_only_what_their_cell_says():
    from lejepa.train_config import resolve_run

    pretrain = yaml.safe_load((REPO / "config" / "pretrain.yaml").read_text())["pretrain"]
    for scale in ("small", "paper"):
        runs = TABLES["table4"]["scales"][scale]["runs"]
        for row in ("plain", "swa", "pred", "pred_swa"):
            for column, run in runs[row].items():
                settings, _ = resolve_run(pretrain, run)
                assert settings["scale"] == scale
                assert len(settings["projector"].split("-")) == int(column[-1]), run
                assert ("predictor" in settings) == row.startswith("pred"), run
                assert ("swa_decay" in settings) == row.endswith("swa"), run
                assert settings["backbone"].startswith("resnet" if column.startswith("resnet") else "vit_"), run
                if column.startswith("vit"):  # ViTs: the global views are the centres, 8-px patches
                    assert settings["centers"] == "global", run
                    assert settings.get("patch_size") == 8 or settings["backbone"] == "vit_small_patch8_224", run


# ---------------------------------------------------------------- through Snakemake


@pytest.fixture
def mirrored_workflow(workflow_copy, require_shared):
    require_shared("datasets/flowers102/meta.json", "the offline dataset mirror the tiny targets are prepared from")
    write_yaml({"data": {"mirror_dir": str(MIRROR)}}, workflow_copy / "mirror.yaml")
    return workflow_copy


def test_small_scale_plans_every_table4_and_figure9_run(mirrored_workflow):
    result = run_snakemake("-n", "tables/table4.csv", "figures/fig9.pdf", "figures/fig14.pdf",
                           "--configfile", "mirror.yaml", cwd=mirrored_workflow)  # fmt: skip
    output = output_of(result)
    assert result.returncode == 0, output
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", output, flags=re.M))
    # table 4: 12 runs; figure 9: 8 models (resnet18, resnext26ts shared with table 5); figure 14: 1 ViT
    assert int(counts["pretrain"]) == 12 + 8 + 1 and int(counts["segmentation_figures"]) == 1


@pytest.mark.slow
def test_paper_scale_plans_table4_on_gpus(mirrored_workflow):
    copy = mirrored_workflow
    (copy / "imagenet" / "train").mkdir(parents=True)
    write_yaml({"data": {"imagenet_dir": "imagenet", "mirror_dir": str(MIRROR)}}, copy / "paper.yaml")
    result = run_snakemake("-n", "--profile", "slurm", "tables/table4.csv", "figures/fig9.pdf", "--config",
                           "scale=paper", "--configfile", "paper.yaml", cwd=copy)  # fmt: skip
    output = output_of(result)
    assert result.returncode == 0, output
    pretrain = dict(re.findall(r"wildcards: run=(\S+)\n\s+resources: (.+)", output))
    assert len([run for run in pretrain if run.startswith("t4_")]) == 36
    assert all("gres=gpu:8" in pretrain[run] for run in pretrain if run.startswith("t4_vit_"))
    assert len([run for run in pretrain if run.startswith("imagenet10_")]) == 8


@pytest.mark.slow
def test_tiny_table4_figure9_and_segmentation_figures_end_to_end(mirrored_workflow):
    copy = mirrored_workflow
    targets = ["tables/table4.csv", "tables/fig9.csv", "figures/fig9.pdf", "figures/fig14.pdf", "figures/fig13.pdf",
               "figures/fig1_bottom_left.pdf"]  # fmt: skip
    write_yaml(FASTER_TINY_SCALE, copy / "faster.yaml")
    result = run_snakemake("--cores", "2", *targets, "--config", "scale=tiny", "--configfile", "mirror.yaml",
                           "faster.yaml", cwd=copy, timeout=1200)  # fmt: skip
    assert result.returncode == 0, output_of(result)[-5000:]

    table4 = pd.read_csv(copy / "tables" / "table4.csv")
    ok = table4[table4.status == "ok"]
    assert set(zip(ok.row, ok.column)) == {("plain", "resnet50_3"), ("plain", "vitt8_3"), ("pred_swa", "vitt8_3")}
    assert ok.accuracy.between(0, 100).all() and (ok.dataset == "tinyimagenet10").all()
    assert len(table4[table4.paper.notna()]) == 36  # the paper's numbers beside ours, every cell
    assert "Scale **tiny**" in (copy / "tables" / "table4.md").read_text()

    fig9 = pd.read_csv(copy / "tables" / "fig9.csv")
    assert set(fig9[fig9.status == "ok"].row) == {"resnet18", "vit_tiny"}
    assert (copy / "figures" / "fig9.png").stat().st_size > 10_000

    fig14 = pd.read_csv(copy / "figures" / "data" / "fig14.csv")
    assert set(fig14.model) == {"lejepa", "random_init"} and len(fig14) == 2 * 3
    assert ((fig14[["explained_1", "explained_2", "explained_3"]].sum(axis=1)) <= 1 + 1e-6).all()
    # FASTER_TINY_SCALE's 16-px images in 4-px patches
    assert (fig14.grid == "4x4").all() and (fig14.run == "flowers102_vit_tiny_tiny").all()
    fig13 = pd.read_csv(copy / "figures" / "data" / "fig13.csv")
    assert len(fig13) == 2 * 3 and (fig13[fig13.frame == 0].iou_with_frame_0 == 1.0).all()
    assert fig13.kept_fraction.between(0, 1).all()
    for name in ("fig14", "fig13", "fig1_bottom_left"):
        assert (copy / "figures" / f"{name}.pdf").stat().st_size > 5_000


# ---------------------------------------------------------------- the committed small-scale figures 13 and 14


def segmentation_numbers() -> dict:
    """What the README says of figures 13 and 14, from figures/data/fig1{3,4}.csv."""
    fig14 = pd.read_csv(REPO / "figures" / "data" / "fig14.csv")
    fig13 = pd.read_csv(REPO / "figures" / "data" / "fig13.csv")
    explained = fig14.assign(top3=fig14[["explained_1", "explained_2", "explained_3"]].sum(axis=1))
    later = fig13[fig13.frame > 0]
    numbers = {"images": fig14.image_index.nunique(), "frames": fig13.frame.nunique()}
    for model in ("lejepa", "random_init"):
        numbers[f"{model} top3"] = f"{100 * explained[explained.model == model].top3.mean():.0f} %"
        numbers[f"{model} kept"] = f"{100 * fig13[fig13.model == model].kept_fraction.mean():.0f} %"
        numbers[f"{model} iou"] = f"{later[later.model == model].iou_with_frame_0.mean():.2f}"
    return numbers


def test_readme_segmentation_numbers_match_the_committed_figure_data():
    readme = " ".join((REPO / "README.md").read_text().split())
    n = segmentation_numbers()
    assert (f"explain {n['lejepa top3']} of the variance of the pretrained ViT's patch features and "
            f"{n['random_init top3']} of the random-init twin's (mean over {n['images']} images)") in readme
    assert (f"keeps {n['lejepa kept']} of the patches (random init: {n['random_init kept']}); over "
            f"{n['frames'] - 1} more augmented frames its IoU with frame 0 averages {n['lejepa iou']} "
            f"(random init: {n['random_init iou']})") in readme  # fmt: skip
