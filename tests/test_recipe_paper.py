"""The recipe against the paper: algorithm 2's centres, weight decay by backbone family,
the learning-rate floor, the runs trained before them, and the README table of departures."""

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_train_config

from lejepa import LeJEPALoss, sweeps, train
from lejepa.families import centers_for, is_vit, weight_decay_for
from lejepa.loss import prediction_loss
from lejepa.train_config import ADDED_TRAINING_KEYS

REPO = Path(__file__).resolve().parents[1]
PRETRAIN = yaml.safe_load((REPO / "config" / "pretrain.yaml").read_text())["pretrain"]
PINNED = {"weight_decay": 5.0e-2, "centers": "global", "final_lr_ratio": 0}  # the recipe of commit 42854ce


def engine_config(data_dir, out_dir, **overrides):
    """conftest's tiny run with the recipe's family settings (centres and weight decay by backbone,
    the lr floor), 2 global + 3 local views (so the two centre choices differ), 1 epoch of 2 steps."""
    recipe = dict(run="centres", n_local=3, epochs=1, max_steps_per_epoch=2, final_lr_ratio=1e-3,
                  weight_decay={"vit": 5e-2, "other": 5e-4}, centers="auto")  # fmt: skip
    return tiny_train_config(data_dir, out_dir, **{**recipe, **overrides})


# ---------------------------------------------------------------- centres (algorithm 2)


def test_every_view_as_centre_is_the_spread_of_the_views_around_their_mean():
    rng = np.random.default_rng(0)
    all_np = rng.normal(size=(6, 32, 8))
    all_np[:2] += 0.5  # global views differ from the local ones, so the two centres differ
    all_z = torch.tensor(all_np)
    # by hand: mean over views v, samples n, dims k of (z_vnk - mean over all views of z_.nk)^2,
    # i.e. the variance of each (n, k) across the V views (ddof 0), averaged
    mean_all = all_np.mean(axis=0)
    by_hand = sum(((all_np[v] - mean_all) ** 2).mean() for v in range(6)) / 6
    assert by_hand == pytest.approx(all_np.var(axis=0).mean(), rel=1e-12)

    terms = LeJEPALoss(lam=0.0)(all_z, all_z, step=0)  # centers = all: every view is passed as a centre
    assert terms["prediction"].item() == pytest.approx(by_hand, rel=1e-12)
    assert terms["loss"].item() == pytest.approx(by_hand, rel=1e-12)
    global_centres = ((all_np - all_np[:2].mean(axis=0)) ** 2).mean()
    assert prediction_loss(global_z=all_z[:2], all_z=all_z).item() == pytest.approx(global_centres, rel=1e-12)
    assert abs(global_centres - by_hand) > 0.05  # the setting changes the loss


@pytest.mark.parametrize(
    ("backbone", "vit"),
    [
        ("resnet18", False),
        ("resnext26ts", False),
        ("convnextv2_nano", False),
        ("vit_large_patch14_224", True),
        ("vit_small_patch8_224", True),
        ("swin_tiny_patch4_window7_224", True),
        ("deit_small_patch16_224", True),
    ],
)
def test_auto_centres_and_weight_decay_follow_the_backbone_family(backbone, vit):
    assert is_vit(backbone) is vit
    assert centers_for("auto", backbone) == ("global" if vit else "all")
    assert centers_for("global", backbone) == "global" and centers_for("all", backbone) == "all"
    assert weight_decay_for({"vit": 5e-2, "other": 5e-4}, backbone) == (5e-2 if vit else 5e-4)
    assert weight_decay_for(0.1, backbone) == 0.1
    config = train.check_config(engine_config("d", "o", backbone=backbone))
    assert (config["centers"], config["weight_decay"]) == (("global", 5e-2) if vit else ("all", 5e-4))


def test_bad_family_settings_are_refused():
    with pytest.raises(ValueError, match="centers"):
        train.check_config(engine_config("d", "o", centers="local"))
    with pytest.raises(ValueError, match="vit and other"):
        train.check_config(engine_config("d", "o", weight_decay={"vit": 5e-2, "resnet": 5e-4}))
    with pytest.raises(ValueError, match="weight_decay"):
        train.check_config(engine_config("d", "o", weight_decay=-1.0))
    with pytest.raises(ValueError, match="final_lr_ratio"):
        train.check_config(engine_config("d", "o", final_lr_ratio=2.0))


@pytest.mark.parametrize(("centers", "expected_views"), [("auto", 5), ("all", 5), ("global", 2)])
def test_the_train_step_gives_the_loss_the_configured_centres(tiny_dataset, tmp_path, monkeypatch, centers,
                                                              expected_views):
    seen = []
    forward = LeJEPALoss.forward

    def recording_forward(self, global_z, all_z, *, step):
        seen.append((global_z.shape[0], all_z.shape[0]))
        if global_z.shape[0] == all_z.shape[0]:
            assert torch.equal(global_z, all_z)  # every view, in the same order
        else:
            assert torch.equal(global_z, all_z[: global_z.shape[0]])  # the global views come first
        return forward(self, global_z, all_z, step=step)

    monkeypatch.setattr(LeJEPALoss, "forward", recording_forward)
    train.main(engine_config(tiny_dataset, tmp_path / "run", centers=centers))  # test_resnet: not a ViT
    assert seen == [(expected_views, 5)] * 2  # 2 steps, 2 global + 3 local views


# ---------------------------------------------------------------- learning-rate floor


def test_cosine_ends_at_the_floor_and_without_one_is_unchanged():
    kwargs = dict(peak=2.0, warmup_steps=4, total_steps=14)
    assert train.learning_rate(14, **kwargs, final=2e-3) == pytest.approx(2e-3, rel=1e-12)
    assert train.learning_rate(4, **kwargs, final=2e-3) == 2.0
    assert train.learning_rate(9, **kwargs, final=2e-3) == pytest.approx((2.0 + 2e-3) / 2, rel=1e-12)
    for step in range(16):  # final 0 is the old schedule, bit for bit (resumed runs stay identical)
        if step >= 4:
            old = 2.0 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - 4) / 10)))
            assert train.learning_rate(step, **kwargs, final=0.0) == old == train.learning_rate(step, **kwargs)


def test_a_checkpoint_from_before_the_floor_key_resumes(tiny_dataset, tmp_path):
    config = engine_config(tiny_dataset, tmp_path / "run", final_lr_ratio=0)
    final = train.main(config)
    checkpoint_path = tmp_path / "run" / "checkpoint.pt"
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    del checkpoint["config"]["final_lr_ratio"]  # as written by the engine before the key existed
    torch.save(checkpoint, checkpoint_path)
    final.unlink()
    train.main(config)
    assert final.exists() and not (tmp_path / "run" / "checkpoint.stale.pt").exists()


# ---------------------------------------------------------------- configured runs


def pinned_runs():
    return [run for run, spec in PRETRAIN["runs"].items() if all(spec.get(k) == v for k, v in PINNED.items())]


def test_runs_trained_before_the_change_resolve_to_what_they_were_trained_with():
    runs = pinned_runs()
    # the runs with results in the repository or runs/, and every small-scale cell of table 5
    assert {"tinyimagenet100_resnet18", "flowers102_resnet18", "food10_resnext26ts", "cifar10_resnet18_1ep",
            "tinyimagenet10_resnext26ts", "flowers102_resnet18_tiny"} <= set(runs)  # fmt: skip
    for run in runs:
        config = train.resolve_run(PRETRAIN, run)[0]
        assert "final_lr_ratio" not in config  # the workflow's params of the run are as before the key
        assert (config["weight_decay"], config["centers"]) == (0.05, "global")


def test_every_committed_run_resolves_to_the_settings_it_was_trained_with():
    """A change of a scale's settings (the recipe change of 42854ce, 2 local views at small scale)
    leaves every finished run as it was trained: each run whose training config is committed
    under docs/runs/ resolves, from config/pretrain.yaml and the sweeps, to the training settings
    of that record (so Snakemake plans no retraining and its table keeps one recipe)."""
    sweep_config = yaml.safe_load((REPO / "config" / "sweeps.yaml").read_text())["sweeps"]
    pretrain = {**PRETRAIN, "runs": sweeps.merge_sweep_runs(PRETRAIN, sweep_config)}
    records = sorted((REPO / "docs" / "runs").glob("*/config.yaml"))
    checked = 0
    for record in records:
        trained = yaml.safe_load(record.read_text())
        if trained["run"] not in pretrain["runs"]:  # e.g. the H100 run, not a run of the workflow
            continue
        config = train.resolve_run(pretrain, trained["run"])[0]
        keys = [key for key in train.TRAINING_KEYS if key in trained]
        # a key at its added default is left out of a resolved run (resolve_run)
        resolved = {k: config.get(k, ADDED_TRAINING_KEYS.get(k)) for k in keys}
        assert {k: trained[k] for k in keys} == resolved, trained["run"]
        checked += 1
    assert checked >= 0.9 * len(records)


def test_the_paper_scale_has_the_papers_views_lambda_and_the_official_recipe():
    resnet = train.resolve_run(PRETRAIN, "flowers102_resnet18_paper")[0]
    vit = train.resolve_run(PRETRAIN, "imagenet_vit_large_patch14_paper")[0]
    assert resnet["n_global"] + resnet["n_local"] == 8 and resnet["n_global"] == 2
    assert resnet["lam"] == 0.05
    assert (resnet["centers"], resnet["weight_decay"], resnet["final_lr_ratio"]) == ("all", 5e-4, 1e-3)
    assert (vit["centers"], vit["weight_decay"], vit["final_lr_ratio"]) == ("global", 5e-2, 1e-3)


# ---------------------------------------------------------------- the README table


def readme_table(title: str) -> list[dict]:
    text = (REPO / "README.md").read_text()
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[2:]]
    assert rows, f"README section {title!r} has no table"
    return rows


def cell_values(cell: str) -> list:
    """'2 + 6' -> [2, 6]; '224 / 96' -> [224, 96]; '5e-4' -> [0.0005]; 'all' -> ['all']."""
    values = []
    for part in re.split(r" \+ | / ", cell.replace("`", "")):
        try:
            values.append(float(part))
        except ValueError:
            values.append(part)
    return values


def test_readme_departures_table_is_what_the_config_resolves_to():
    rows = readme_table("The recipe against the paper")
    columns = {
        "`paper` scale": train.resolve_run(PRETRAIN, "flowers102_resnet18_paper")[0],
        "`small` scale": train.resolve_run(PRETRAIN, "cifar10_resnet18")[0],
    }
    checked = set()
    for row in rows:
        keys = re.findall(r"`([a-z_]+)`", row["setting"])
        assert keys, f"README row {row['setting']!r} names no config key"
        for column, config in columns.items():
            expected = [float(config[k]) if isinstance(config[k], (int, float)) else str(config[k]) for k in keys]
            assert cell_values(row[column]) == expected, (row["setting"], column)
        checked.update(keys)
    # every setting where either scale departs from the paper has a row
    assert {"n_local", "lam", "num_slices", "t_max", "batch_size", "epochs", "lr", "weight_decay",
            "final_lr_ratio", "centers", "global_size", "projector"} <= checked  # fmt: skip
