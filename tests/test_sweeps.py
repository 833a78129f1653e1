"""Sweeps (config/sweeps.yaml, lejepa.sweeps): the expansion into pretraining runs at each scale,
the paper's tables 7 and 1 as transcribed, table 7's and table 1's assembly (table 1's seed-noise
labels against a hand computation), the loss pool and its Spearman correlations against scipy on
hand-made runs, the tiny-scale tables 7 and 1, figure 8 and pool figures built end to end through
Snakemake, and the paper-scale dry runs of table 7's 36-run grid and table 1's 53 runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import output_of, run_snakemake, write_tiny_dataset, write_yaml
from scipy.stats import spearmanr

from lejepa import sweeps

REPO = Path(__file__).resolve().parents[1]
SWEEPS = yaml.safe_load((REPO / "config" / "sweeps.yaml").read_text())["sweeps"]
PRETRAIN = yaml.safe_load((REPO / "config" / "pretrain.yaml").read_text())["pretrain"]
TABLE7 = SWEEPS["table7"]
TABLE1 = SWEEPS["table1"]
PAPER_LAMBDAS = [0.001, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5]


# ---------------------------------------------------------------- expansion


def test_run_names_are_deterministic():
    assert sweeps.run_name("cifar10_resnet18", lam=0.05, views=4) == "cifar10_resnet18__lam0.05__v4"
    assert sweeps.run_name("b", lam=0.001, views=8, seed=2) == "b__lam0.001__v8__s2"
    assert sweeps.run_name("b", lam=0.150, views=2) == "b__lam0.15__v2"


def test_views_are_all_global_by_default_or_two_global_plus_locals():
    assert sweeps.view_keys(8) == {"n_global": 8, "n_local": 0}
    assert sweeps.view_keys(8, "two_global") == {"n_global": 2, "n_local": 6}
    with pytest.raises(ValueError, match="at least 2"):
        sweeps.view_keys(1, "two_global")


@pytest.mark.parametrize("scale, count", [("tiny", 4), ("small", 6 * 3 + 2), ("paper", 36)])
def test_each_scale_expands_into_its_grid(scale, count):
    at_scale = TABLE7["scales"][scale]
    runs = sweeps.sweep_runs(TABLE7, scale, PRETRAIN["runs"])
    generated = {name: spec for name, spec in runs.items() if "__lam" in name}
    assert len(generated) == count
    for name, spec in generated.items():
        match = re.fullmatch(rf"{at_scale['base']}__lam([0-9.]+)__v([0-9]+)(?:__s([0-9]+))?", name)
        assert match, name
        lam, views, seed = float(match[1]), int(match[2]), int(match[3] or 0)
        assert (spec["lam"], spec["n_global"], spec["n_local"], spec["seed"]) == (lam, views, 0, seed)
        assert spec["scale"] == scale
        for key, value in at_scale.get("settings", {}).items():
            assert spec[key] == value
    lams = sorted({spec["lam"] for spec in generated.values()})
    views = sorted({spec["n_global"] for spec in generated.values()})
    if scale == "paper":
        assert lams == PAPER_LAMBDAS and views == [2, 4, 8]
        assert runs[at_scale["base"]] == {"dataset": "imagenet100", "backbone": "resnet50", "scale": "paper"}
    if scale == "small":  # the issue: at least 6 lambdas spanning 0.005-0.5 x 3 view counts, 3 seeds of one cell
        assert len(lams) >= 6 and lams[0] == 0.005 and lams[-1] == 0.5 and views == [2, 4, 8]
        noise = at_scale["noise"]
        seeds = [spec["seed"] for spec in generated.values() if (spec["lam"], spec["n_global"]) ==
                 (noise["lam"], noise["views"])]  # fmt: skip
        assert sorted(seeds) == [0, 1, 2]
    if scale == "tiny":
        assert len(lams) == 2 and views == [2, 4]


def test_merged_runs_resolve_through_the_training_engine():
    from lejepa.train_config import resolve_run

    runs = sweeps.merge_sweep_runs(PRETRAIN, SWEEPS)
    pretrain = {**PRETRAIN, "runs": runs}
    config, resources = resolve_run(pretrain, "cifar10_resnet18__lam0.5__v8")
    assert (config["lam"], config["n_global"], config["n_local"], config["epochs"]) == (0.5, 8, 0, 1)
    assert config["dataset"] == "cifar10" and config["scale"] == "small"
    config, resources = resolve_run(pretrain, "imagenet100_resnet50_paper__lam0.001__v2")
    assert (config["backbone"], config["epochs"], config["global_size"]) == ("resnet50", 400, 224)
    assert resources["gpus"] == 1
    for name in runs:  # every generated run is a valid training config
        if "__lam" in name:
            resolve_run(pretrain, name)


def test_a_generated_name_that_pretrain_defines_otherwise_is_an_error():
    clash = {**PRETRAIN, "runs": {**PRETRAIN["runs"], "cifar10_resnet18__lam0.05__v4": {"dataset": "x"}}}
    with pytest.raises(ValueError, match="already defines"):
        sweeps.merge_sweep_runs(clash, SWEEPS)
    bad = {"table7": {**TABLE7, "scales": {"small": {**TABLE7["scales"]["small"], "base": "nope"}}}}
    with pytest.raises(ValueError, match="'nope' is not in pretrain.runs"):
        sweeps.merge_sweep_runs(PRETRAIN, bad)


def test_cells_hold_their_seeds_and_say_why_nothing_is_planned():
    cells = sweeps.sweep_cells(TABLE7, "small")
    assert len(cells) == 18
    noise = [cell for cell in cells if len(cell["runs"]) > 1]
    assert len(noise) == 1 and noise[0]["results"][2] == "results/cifar10_resnet18__lam0.02__v4__s2/linear/cifar10.json"
    assert {cell["paper"] for cell in cells if (cell["lam"], cell["views"]) == (0.05, 8)} == {84.32}
    blocked = sweeps.sweep_cells(TABLE7, "paper", unavailable=lambda name: f"{name}: needs ImageNet-1k")
    assert all(cell["status"] == "imagenet100: needs ImageNet-1k" and not cell["results"] for cell in blocked)


# ---------------------------------------------------------------- the paper's table 7


def test_table7_transcription_spans_the_range_targets_states(require_shared):
    targets = require_shared("paper/TARGETS.md", "the paper's stated range of table 7").read_text()
    low, high = map(float, re.search(r"accuracy (\d+\.\d)-(\d+\.\d)", targets).groups())
    grid = sweeps.paper_grid(TABLE7)
    assert (low, high) == (76.7, 84.7)
    assert round(min(grid.values()), 1) == low and round(max(grid.values()), 1) == high


def test_table7_transcription_rows_and_optimum():
    assert [float(lam) for lam in TABLE7["paper"]["lam"]] == PAPER_LAMBDAS
    grid = sweeps.paper_grid(TABLE7)
    assert len(grid) == 5 + 9 + 12  # V = 2 and V = 4 stop where the paper has no number
    assert [grid[(lam, 8)] for lam in PAPER_LAMBDAS] == [76.67, 81.58, 83.59, 83.49, 83.76, 84.32, 83.66, 83.07,
                                                           82.16, 81.00, 79.25, 77.72]  # fmt: skip
    best = {views: max((acc, lam) for (lam, v), acc in grid.items() if v == views) for views in (2, 4, 8)}
    assert best == {2: (83.49, 0.01), 4: (84.68, 0.02), 8: (84.32, 0.05)}  # the optimum rises with V


# ---------------------------------------------------------------- table 7's assembly


def test_table_frame_averages_seeds_and_keeps_the_papers_cells():
    sweep = {**TABLE7, "scales": {"toy": {"base": "b", "lam": [0.02, 0.5], "views": [4], "seeds": [0],
                                          "noise": {"lam": 0.02, "views": 4, "seeds": [0, 1]},
                                          "probe": "linear", "dataset": "d"}}}  # fmt: skip
    cells = sweeps.sweep_cells(sweep, "toy")
    accuracy = {"results/b__lam0.02__v4/linear/d.json": 50.0, "results/b__lam0.02__v4__s1/linear/d.json": 54.0,
                "results/b__lam0.5__v4/linear/d.json": 40.0}  # fmt: skip
    frame = sweeps.sweep_table_frame(
        sweep, cells, scale="toy", read_result=lambda path: {"accuracy": accuracy[path]},
        run_info=lambda run: {"backbone": "resnet18", "pretrain_dataset": "d", "epochs": 2, "resolution": 32,
                              "pretrain_wall_s": 60.0, "pretrain_device": "cpu", "pretrain_commit": "abc"},
        dataset_label=str, commit="abc",
    )  # fmt: skip
    ours = frame.dropna(subset=["accuracy"]).set_index("lam")
    assert ours.loc[0.02, "accuracy"] == 52.0 and ours.loc[0.02, "std"] == pytest.approx(np.std([50, 54], ddof=1))
    assert ours.loc[0.02, "seeds"] == 2 and ours.loc[0.02, "pretrain_wall_s"] == 120.0
    assert ours.loc[0.02, "paper"] == 84.68 and ours.loc[0.02, "gap"] == pytest.approx(52.0 - 84.68)
    assert ours.loc[0.5, "paper"] != ours.loc[0.5, "paper"]  # the paper has no V = 4, lambda = 0.5
    assert len(frame) == 2 + 26 - 1  # our two cells, the paper's other 25
    assert (frame[frame.accuracy.isna()].status == "not run at toy scale").all()
    checks = sweeps.sweep_checks(frame)
    assert checks[0].startswith("V = 4: best lambda 0.02 (52.00, at an end of our grid); spread across 2 lambdas 12.00")
    assert "paper: best 0.02 (84.68), spread 6.10 over 9 lambdas" in checks[0]
    assert checks[1].startswith("Seed noise: lambda 0.02, V = 4, 2 seeds: std 2.83 points")
    markdown = sweeps.sweep_table_markdown(frame, sweep)
    assert "Scale **toy**" in markdown and "not a reproduction" in markdown and "| 4 | " in markdown
    assert "52.00 ± 2.83 (84.68)" in markdown


# ---------------------------------------------------------------- table 1: axes, names, the paper's grid


def test_run_names_tag_what_differs_from_the_default_cell():
    small = {point["run"]: point["keys"] for point in sweeps.sweep_points(TABLE1, "small")}
    # the default cell is table 7's noise cell, with its three seeds
    assert {"cifar10_resnet18__lam0.02__v4", "cifar10_resnet18__lam0.02__v4__s1",
            "cifar10_resnet18__lam0.02__v4__s2"} <= set(small)  # fmt: skip
    assert small["cifar10_resnet18__lam0.02__v4"] == {"lam": 0.02, "n_global": 4, "n_local": 0}
    assert small["cifar10_resnet18__lam0.02__v8__vg2"] == {"lam": 0.02, "n_global": 2, "n_local": 6}
    assert small["cifar10_resnet18__lam0.02__v4__t1__sl1024__k5"] == {
        "lam": 0.02, "n_global": 4, "n_local": 0, "t_max": 1.0, "num_slices": 1024, "knots": 5}  # fmt: skip
    assert small["cifar10_resnet18__lam0.02__v4__sl1024__p2048-2048-64"]["projector"] == "2048-2048-64"
    assert small["cifar10_resnet18__lam0.02__v4__b128"]["batch_size"] == 128
    # (a)'s slices 1024 at the default t_max and knots and (d)'s projector 512-512-128 at 1024 slices: one run
    cells = sweeps.sweep_cells(TABLE1, "small")
    shared = [cell for cell in cells if cell["runs"] == ["cifar10_resnet18__lam0.02__v4__sl1024"]]
    assert [cell["part"] for cell in shared] == ["a", "d"]
    assert len(small) == 3 + 28  # the default cell's 3 seeds and 28 other runs
    assert sweeps.run_name("b", lam=0.05, views=8, seed=1, extra={"knots": 41, "n_global": 4, "t_max": 1.0}) == \
        "b__lam0.05__v8__vg4__t1__k41__s1"


def test_table1_runs_share_table7s_and_resolve():
    from lejepa.train_config import resolve_run

    runs = sweeps.merge_sweep_runs(PRETRAIN, SWEEPS)
    assert runs["cifar10_resnet18__lam0.02__v4__s2"] == sweeps.sweep_runs(TABLE7, "small", PRETRAIN["runs"])[
        "cifar10_resnet18__lam0.02__v4__s2"]  # fmt: skip
    pretrain = {**PRETRAIN, "runs": runs}
    config, _ = resolve_run(pretrain, "cifar10_resnet18__lam0.02__v8__vg1")
    assert (config["n_global"], config["n_local"], config["global_size"], config["local_size"]) == (1, 7, 32, 16)
    assert (config["epochs"], config["max_steps_per_epoch"], config["warmup_epochs"]) == (1, 120, 0.1)
    config, _ = resolve_run(pretrain, "cifar10_resnet18__lam0.02__v4__sl1024__p2048-2048-512")
    assert (config["projector"], config["num_slices"], config["t_max"], config["knots"]) == ("2048-2048-512", 1024,
                                                                                              3.0, 17)  # fmt: skip
    config, resources = resolve_run(pretrain, "imagenet_vit_large_patch14_paper__lam0.05__v10__vg4")
    assert (config["backbone"], config["dataset"], config["epochs"]) == ("vit_large_patch14_224", "imagenet", 100)
    assert (config["n_global"], config["n_local"], config["lam"], config["batch_size"]) == (4, 6, 0.05, 512)
    assert resources["nodes"] == 2


def test_a_default_cell_that_is_not_its_base_runs_settings_is_an_error():
    small = {**TABLE1["scales"]["small"], "default": {**TABLE1["scales"]["small"]["default"], "num_slices": 512}}
    with pytest.raises(ValueError, match=r"num_slices = 512 \(the run: 256\)"):
        sweeps.merge_sweep_runs(PRETRAIN, {"table1": {**TABLE1, "scales": {"small": small}}})
    with pytest.raises(ValueError, match="'seed' is neither"):
        sweeps.check_axes(["seed"])
    bad = {**TABLE1["scales"]["small"], "parts": {"c": {"batch": [128]}}}
    with pytest.raises(ValueError, match="'batch' is neither a setting"):
        sweeps.sweep_points({**TABLE1, "scales": {"small": bad}}, "small")


def test_table1_paper_grid_expands_to_the_papers_cell_count():
    numbers = {part: len(sweeps.paper_cells(spec["paper"])) for part, spec in TABLE1["parts"].items()}
    assert numbers == {"a": 3 * 2 * 3, "b": 4 * 3 - 1, "c": 4, "d": 5 * 2 * 2, "e": 5 * 2}  # the paper's table 1
    cells = sweeps.sweep_cells(TABLE1, "paper")
    for part in "abcde":  # every number of the paper's sub-table is a cell of ours, and nothing else but the default
        ours = [cell for cell in cells if cell["part"] == part]
        with_paper = [cell for cell in ours if cell["paper"] is not None]
        assert len(with_paper) == numbers[part]
        assert sorted(cell["paper"] for cell in with_paper) == sorted(
            accuracy for _, accuracy in sweeps.paper_cells(TABLE1["parts"][part]["paper"]))  # fmt: skip
        assert all(cell["reference"] for cell in ours if cell["paper"] is None)
    runs = {run for cell in cells for run in cell["runs"]}
    # 63 cells; the default cell is in (b), (c), (d) and (e), 4096 slices at the default projector in (d) and (e);
    # and 2 more seeds of the default cell
    assert len(runs) == 63 - 3 - 1 + 2
    assert "imagenet_vit_large_patch14_paper__lam0.05__v8__sl4096__reg8" in runs
    assert not [cell for cell in sweeps.sweep_cells(TABLE1, "small") if cell["part"] == "e"]  # resnet18: no registers
    b = {(cell["n_global"], cell["views"]): cell for cell in cells if cell["part"] == "b"}
    assert (4, 4) not in b and b[(2, 8)]["reference"] and b[(1, 4)]["paper"] == 53.06


def test_table1_transcription_matches_targets(require_shared):
    targets = require_shared("paper/TARGETS.md", "the paper's table 1 numbers").read_text()
    text = targets[targets.index("**Table 1**"):targets.index("**Table 2**")]
    part_a = text[text.index("(a)"):text.index("(b)")]
    stated = [float(x) for x in re.findall(r"\d+\.\d\d", part_a)]
    grid = sweeps.paper_grid(TABLE1, "a")  # (knots, num_slices, t_max) -> number
    ours = [grid[(knots, slices, t_max)] for t_max in (1, 3, 5) for slices in (512, 2048) for knots in (5, 17, 41)]
    assert ours == stated
    b = sweeps.paper_grid(TABLE1, "b")  # (views, n_global)
    assert [b[(views, 2)] for views in (4, 6, 8, 10)] == [72.26, 73.07, 74.24, 74.06]
    assert [b[(views, 4)] for views in (6, 8, 10)] == [73.68, 73.94, 75.08]
    assert (b[(4, 1)], b[(10, 1)], (4, 4) in b) == (53.06, 68.97, False)
    assert list(sweeps.paper_grid(TABLE1, "c").values()) == [72.20, 74.15, 74.72, 74.07]
    low, high = map(float, re.search(r"projector dim\s+64\.\.1024: (\d+\.\d+)-(\d+\.\d+)", text).groups())
    d = sweeps.paper_grid(TABLE1, "d").values()
    assert (min(d), max(d)) == (low, high) == (73.65, 75.65)
    low, high = map(float, re.search(r"x slices 1024/4096: (\d+\.\d+)-(\d+\.\d+)", text).groups())
    e = sweeps.paper_grid(TABLE1, "e").values()
    assert (min(e), max(e)) == (low, high)


# ---------------------------------------------------------------- table 1's assembly


TOY_TABLE1 = {
    "title": "toy", "claim": "stable",
    "parts": {"a": {"title": "(a) knots", "axes": ["knots"],
                    "paper": {"knots": [5, 17], "rows": [{"accuracy": [70.0, 71.0]}]}},
              "e": {"title": "(e) registers", "axes": ["num_registers"], "note": "needs a ViT",
                    "paper": {"num_registers": [0, 8], "rows": [{"accuracy": [75.0, 75.5]}]}}},
    "scales": {"toy": {"base": "b", "define": {"dataset": "d", "backbone": "resnet18"},
                       "default": {"lam": 0.02, "views": 4, "knots": 17}, "parts": {"a": {"knots": [5, 17, 41, 65]}},
                       "noise": {"seeds": [0, 1, 2]}, "probe": "linear", "dataset": "d"}},
}  # fmt: skip


def test_table1_labels_each_difference_against_the_seed_noise_by_hand():
    cells = sweeps.sweep_cells(TOY_TABLE1, "toy")
    assert [(cell["knots"], cell["reference"], len(cell["runs"])) for cell in cells] == [
        (17, True, 3), (5, False, 1), (41, False, 1), (65, False, 1)]  # fmt: skip
    accuracy = {"b__lam0.02__v4": 50.0, "b__lam0.02__v4__s1": 52.0, "b__lam0.02__v4__s2": 54.0,
                "b__lam0.02__v4__k5": 56.0, "b__lam0.02__v4__k41": 46.0}  # fmt: skip
    results = {f"results/{run}/linear/d.json": value for run, value in accuracy.items()}
    missing = "results/b__lam0.02__v4__k65/linear/d.json"
    frame = sweeps.ablation_frame(
        TOY_TABLE1, cells, scale="toy",
        read_result=lambda path: {"accuracy": results[path]} if path != missing else {"status": "not trained"},
        run_info=lambda run: {"backbone": "resnet18", "pretrain_dataset": "d", "epochs": 1, "resolution": 32,
                              "pretrain_wall_s": 60.0, "pretrain_device": "cpu", "pretrain_commit": "abc"},
        dataset_label=str, commit="abc", budget={"max_steps_per_epoch": 120, "warmup_epochs": 0.1},
    )  # fmt: skip
    # by hand: sigma = std(50, 52, 54; ddof 1) = 2; the reference is their mean 52; a one-seed cell
    # against it is beyond noise when |delta| > 2 * 2 * sqrt(1 + 1/3) = 4.6188
    ours = frame[frame.part == "a"].set_index("knots")
    assert ours.loc[17, "accuracy"] == 52.0 and ours.loc[17, "std"] == 2.0 and ours.loc[17, "label"] == "reference"
    assert ours.loc[5, "delta"] == 4.0 and ours.loc[5, "threshold"] == pytest.approx(4.618802, abs=1e-6)
    assert ours.loc[5, "label"] == "within seed noise"
    assert ours.loc[41, "delta"] == -6.0 and ours.loc[41, "label"] == "beyond seed noise"
    assert ours.loc[65, "status"] == "not trained" and np.isnan(ours.loc[65, "accuracy"])
    assert (frame.noise_std == 2.0).all() and (ours.loc[5, "paper"], ours.loc[17, "paper"]) == (70.0, 71.0)
    assert np.isnan(ours.loc[41, "paper"])
    e = frame[frame.part == "e"]
    assert len(e) == 2 and e.accuracy.isna().all()
    assert (e.status == "not run at toy scale: needs a ViT").all()
    markdown = sweeps.ablation_markdown(frame, TOY_TABLE1)
    assert "σ = 2.00 points" in markdown and "|Δ| > 4.62 points" in markdown
    assert "| 5 | 56.00 | +4.00 | within seed noise | 70 |" in markdown
    assert "| 41 | 46.00 | -6.00 | beyond seed noise |  |" in markdown
    assert "| 17 | 52.00 ± 2.00 (3 seeds) | default |  | 71 |" in markdown
    assert "| 65 | n/a (not trained) |" in markdown
    assert "Not run at toy scale: needs a ViT." in markdown and "| 8 | not run |  |  | 75.50 |" in markdown
    assert "1 of 2 differences beyond seed noise" in markdown


def test_without_noise_seeds_nothing_is_labelled_within_or_beyond():
    one_seed = {**TOY_TABLE1, "scales": {"toy": {**TOY_TABLE1["scales"]["toy"], "noise": {"seeds": [0, 1]}}}}
    cells = sweeps.sweep_cells(one_seed, "toy")
    frame = sweeps.ablation_frame(
        one_seed, cells, scale="toy",
        read_result=lambda path: {"status": "weights unreachable"} if "__s1" in path else {"accuracy": 50.0},
        run_info=lambda run: {}, dataset_label=str, commit="abc")  # fmt: skip
    labels = set(frame[frame.part == "a"].label.dropna())
    assert "within seed noise" not in labels and "beyond seed noise" not in labels


# ---------------------------------------------------------------- the loss pool


def write_run(folder: Path, run: str, *, lam: float, losses, accuracies, probe_accuracy: float, views=2):
    """runs/<run>/metrics.csv as lejepa.train writes it and results/<run>/linear/d.json."""
    epochs = len(losses)
    metrics = pd.DataFrame({
        "epoch": range(1, epochs + 1), "step": [10 * e for e in range(1, epochs + 1)], "loss": losses,
        "prediction": [0.5 * x for x in losses], "sigreg": [2.0 * x for x in losses], "online_acc": accuracies,
        "online_eval_acc": accuracies, "lr": 0.001, "img_per_s": 10.0, "wall_s": range(1, epochs + 1),
    })  # fmt: skip
    (folder / "runs" / run).mkdir(parents=True)
    metrics.to_csv(folder / "runs" / run / "metrics.csv", index=False)
    result = folder / "results" / run / "linear" / "d.json"
    result.parent.mkdir(parents=True)
    result.write_text(json.dumps({"status": "ok", "accuracy": probe_accuracy, "std": 0.0}))
    settings = {"scale": "toy", "dataset": "d", "backbone": "resnet18", "lam": lam, "n_global": views, "n_local": 0,
                "seed": 0, "epochs": epochs}  # fmt: skip
    return {"run": run, "sweep": "table7", "settings": settings, "probe": "linear", "probe_dataset": "d",
            "result": str(result), "metrics": str(folder / "runs" / run / "metrics.csv")}  # fmt: skip


@pytest.fixture
def pool(tmp_path):
    from lejepa.tables import read_result

    rng = np.random.default_rng(0)
    entries = []
    for i, lam in enumerate([0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]):
        epochs = 6 if i == 3 else 3
        losses = list(np.sort(rng.uniform(0.2, 2.0, epochs))[::-1])
        accuracies = list(np.sort(rng.uniform(10, 60, epochs)) + rng.normal(0, 3, epochs))
        entries.append(write_run(tmp_path, f"b__lam{lam}__v2", lam=lam, losses=losses, accuracies=accuracies,
                                 probe_accuracy=float(rng.uniform(20, 80))))  # fmt: skip
    return sweeps.pool_frame(entries, read_result=read_result), entries


def test_pool_holds_each_runs_final_losses_and_its_epochs(pool):
    frame, entries = pool
    assert list(frame.columns) == sweeps.POOL_COLUMNS
    assert len(frame) == 6 + 6 * 3
    runs = sweeps.pool_runs(frame)
    assert len(runs) == 7
    for entry in entries:
        metrics = pd.read_csv(entry["metrics"])
        row = runs.set_index("run").loc[entry["run"]]
        assert row.final_loss == metrics.loss.iloc[-1] and row.final_sigreg == metrics.sigreg.iloc[-1]
        assert row.final_prediction == metrics.prediction.iloc[-1] and row.final_step == metrics.step.iloc[-1]
        assert row.accuracy == json.loads(Path(entry["result"]).read_text())["accuracy"]
        assert row.lam == entry["settings"]["lam"] and row.views == 2
        series = frame[frame.run == entry["run"]]
        assert np.allclose(series.online_eval_acc, metrics.online_eval_acc)


def test_a_result_that_is_not_ok_leaves_its_run_out(tmp_path):
    from lejepa.tables import read_result

    entry = write_run(tmp_path, "r", lam=0.1, losses=[1.0, 0.5], accuracies=[1.0, 2.0], probe_accuracy=5.0)
    Path(entry["result"]).write_text(json.dumps({"status": "weights unreachable"}))
    assert sweeps.pool_frame([entry], read_result=read_result).empty


def test_spearman_is_scipys_of_minus_the_loss():
    rng = np.random.default_rng(1)
    loss, accuracy = rng.uniform(size=20), rng.uniform(size=20)
    assert sweeps.spearman_percent(loss, accuracy) == pytest.approx(100 * spearmanr(-loss, accuracy).statistic)
    assert sweeps.spearman_percent([3.0, 2.0, 1.0], [1.0, 2.0, 3.0]) == pytest.approx(100.0)
    assert np.isnan(sweeps.spearman_percent([1.0, 2.0], [1.0, 2.0]))  # under 3 points


def test_alpha_curve_and_figure_1_numbers_against_scipy(pool):
    frame, _ = pool
    runs = sweeps.pool_runs(frame)
    curve = sweeps.alpha_curve(runs, [0.0, 0.4, 1.0])
    assert list(curve.group.unique()) == ["all runs"]  # one (backbone, dataset) group: the pool itself
    for alpha in (0.0, 0.4, 1.0):
        expected = 100 * spearmanr(-(runs.final_loss / runs.lam**alpha), runs.accuracy).statistic
        assert curve.set_index("alpha").loc[alpha, "spearman"] == pytest.approx(expected)
    numbers = sweeps.fig1_numbers(frame)
    left, right = numbers[numbers.panel == "top_left"], numbers[numbers.panel == "top_right"]
    assert set(left.run) == {"b__lam0.05__v2"} and len(left) == 6  # the run with the most evaluated epochs
    series = frame[frame.run == "b__lam0.05__v2"]
    expected = 100 * spearmanr(-series.loss, series.online_eval_acc).statistic
    assert left.spearman.iloc[0] == pytest.approx(expected)
    assert set(right.run) == {"b__lam0.05__v2"}  # and the most steps


def test_pool_figures_draw_from_the_pool(pool, tmp_path):
    from lejepa.plots import save_figure
    from lejepa.sweep_plots import pool_figure

    frame, _ = pool
    for name in ("fig1", "fig10", "fig11", "fig19", "fig21"):
        figure, numbers = pool_figure(name, frame, alphas=[0.0, 0.5, 1.0], scale="toy")
        save_figure(figure, tmp_path / f"{name}.pdf", tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000 and len(numbers)
    empty = frame.iloc[:0]
    for name in ("fig1", "fig10", "fig11", "fig19", "fig21"):
        figure, _ = pool_figure(name, empty, alphas=[0.0, 1.0], scale="toy")
        save_figure(figure, tmp_path / "empty.pdf")


# ---------------------------------------------------------------- through Snakemake


def check_tiny_table1(folder: Path):
    """tables/table1.csv and .md of the tiny scale against the probe results on disk: each cell's
    number, the default cell's mean over its 2 seeds, and each label recomputed here."""
    table = pd.read_csv(folder / "tables" / "table1.csv")
    ours = table.dropna(subset=["accuracy"])
    assert set(ours.part) == {"a", "b"} and (table.scale == "tiny").all()

    def accuracy(run):
        return json.loads((folder / f"results/{run}/linear/dtd10.json").read_text())["accuracy"]

    seeds = [accuracy("dtd10_resnet18_tiny__lam0.02__v2"), accuracy("dtd10_resnet18_tiny__lam0.02__v2__s1")]
    sigma, reference = float(np.std(seeds, ddof=1)), float(np.mean(seeds))
    assert ours.noise_std.iloc[0] == pytest.approx(sigma)
    expected = {"a": "dtd10_resnet18_tiny__lam0.02__v2__t1", "b": "dtd10_resnet18_tiny__lam0.02__v2__vg1"}
    for part, run in expected.items():
        rows = ours[ours.part == part].set_index("runs")
        assert rows.loc["dtd10_resnet18_tiny__lam0.02__v2 dtd10_resnet18_tiny__lam0.02__v2__s1", "accuracy"] == \
            pytest.approx(reference)  # fmt: skip
        row = rows.loc[run]
        assert row.accuracy == pytest.approx(accuracy(run)) and row.delta == pytest.approx(accuracy(run) - reference)
        beyond = abs(accuracy(run) - reference) > 2 * sigma * np.sqrt(1 + 1 / 2)
        assert row.label == ("beyond seed noise" if beyond else "within seed noise")
    b = ours[ours.part == "b"]
    assert set(zip(b.n_global, b.n_local)) == {(2, 0), (1, 1)}
    paper_only = table[table.accuracy.isna()]
    assert (paper_only.status.str.startswith("not run at tiny scale")).all() and paper_only.paper.notna().all()
    assert len(table[table.part == "e"]) == 10 and len(table[table.part == "a"]) == 2 + 18
    markdown = (folder / "tables" / "table1.md").read_text()
    assert markdown.count("\n## (") == 5 and "Scale **tiny**" in markdown and "σ = " in markdown
    assert "not run" in markdown and "Not run at tiny scale: register tokens exist only in a ViT" in markdown


@pytest.mark.slow
def test_tiny_sweep_end_to_end(workflow_copy):
    """Table 7, figure 8, the pool and its figures, and table 1, at the tiny scale, on a tiny DTD-10
    (4 classes, 96 / 32 images of 20 px) put where the prepared dataset goes. Table 1's default
    cell is one of table 7's runs; its other cells add 3 runs of a few steps."""
    write_tiny_dataset(workflow_copy / "data" / "dtd10", classes=4)
    result = run_snakemake("--cores", "2", "sweeps", "tables/table1.csv", "tables/table1.md", "--config",
                           "scale=tiny", cwd=workflow_copy, timeout=900)  # fmt: skip
    assert result.returncode == 0, output_of(result)[-5000:]
    assert len(re.findall(r"^(?:local)?rule pretrain:", output_of(result), flags=re.M)) == 4 + 3
    check_tiny_table1(workflow_copy)

    table = pd.read_csv(workflow_copy / "tables" / "table7.csv")
    ours = table.dropna(subset=["accuracy"])
    assert len(ours) == 4 and (table.scale == "tiny").all()
    assert set(zip(ours.lam, ours.views)) == {(0.02, 2), (0.02, 4), (0.2, 2), (0.2, 4)}
    assert (ours.n_global == ours.views).all() and (ours.n_local == 0).all() and (ours.epochs == 3).all()
    for row in ours.itertuples():  # the table holds exactly what the probe wrote
        path = workflow_copy / f"results/{row.runs}/linear/dtd10.json"
        assert row.accuracy == pytest.approx(json.loads(path.read_text())["accuracy"])
    assert ours.set_index(["lam", "views"]).loc[(0.02, 4), "paper"] == 84.68
    assert len(table) == 4 + 26 - 3  # ours and the paper's other cells (it has 0.02 x 2, 0.02 x 4, 0.2 x 4)
    markdown = (workflow_copy / "tables" / "table7.md").read_text()
    assert "Scale **tiny**" in markdown and "not a reproduction" in markdown and "84.68" in markdown

    pool = pd.read_csv(workflow_copy / "tables" / "loss_pool.csv")
    runs = sweeps.pool_runs(pool)
    assert set(runs.run) == set(" ".join(ours.runs).split()) and len(pool) == 4 * 3
    assert pool.online_eval_acc.notna().all() and (pool.groupby("run").epoch.max() == 3).all()
    curve = pd.read_csv(workflow_copy / "figures" / "data" / "fig11.csv")
    for alpha in (0.0, 0.4):
        expected = 100 * spearmanr(-(runs.final_loss / runs.lam**alpha), runs.accuracy).statistic
        got = curve[(curve.group == "all runs") & np.isclose(curve.alpha, alpha)].spearman.iloc[0]
        assert got == pytest.approx(expected, nan_ok=True)
    for name in ("fig1", "fig8", "fig10", "fig11", "fig19", "fig21"):
        assert (workflow_copy / "figures" / f"{name}.png").stat().st_size > 10_000, name
        assert (workflow_copy / "figures" / f"{name}.pdf").exists(), name


@pytest.mark.slow
def test_small_scale_plans_20_runs_and_their_probes(workflow_copy, require_shared):
    meta = require_shared("datasets/cifar10/meta.json", "the offline CIFAR-10 the small sweep trains on")
    mirror = meta.parent.parent
    write_yaml({"data": {"mirror_dir": str(mirror)}}, workflow_copy / "mirror.yaml")
    result = run_snakemake("-n", "sweeps", "--configfile", "mirror.yaml", cwd=workflow_copy)
    output = output_of(result)
    assert result.returncode == 0, output[-5000:]
    runs = set(re.findall(r"wildcards: run=(\S+)\n\s+resources: .*runtime=240", output))
    assert len(runs) == 20 and all(run.startswith("cifar10_resnet18__lam") for run in runs)
    assert {"cifar10_resnet18__lam0.02__v4__s1", "cifar10_resnet18__lam0.02__v4__s2"} <= runs
    assert len(re.findall(r"rule probe:", output)) == 20 and "rule loss_pool:" in output


@pytest.mark.slow
def test_paper_scale_plans_the_papers_36_run_grid(workflow_copy):
    (workflow_copy / "imagenet" / "train").mkdir(parents=True)
    write_yaml({"data": {"imagenet_dir": "imagenet"}}, workflow_copy / "paper.yaml")
    expected = {sweeps.run_name("imagenet100_resnet50_paper", lam=lam, views=views)
                for lam in PAPER_LAMBDAS for views in (2, 4, 8)}  # fmt: skip
    targets = [f"runs/{run}/final.pt" for run in sorted(expected)]
    result = run_snakemake("-n", "--profile", "slurm", *targets, "--config", "scale=paper",
                           "--configfile", "paper.yaml", cwd=workflow_copy)  # fmt: skip
    output = output_of(result)
    assert result.returncode == 0, output[-5000:]
    pretrain = re.findall(r"wildcards: run=(\S+)\n\s+resources: (.+)", output)
    assert {run for run, _ in pretrain} == expected and len(pretrain) == 36
    assert all("gpu=1" in resources for _, resources in pretrain)
    assert "prepare_imagenet100" in output

    result = run_snakemake("-n", "--profile", "slurm", "tables/table7.csv", "--config", "scale=paper",
                           "--configfile", "paper.yaml", cwd=workflow_copy)  # fmt: skip
    output = output_of(result)
    assert result.returncode == 0, output[-5000:]
    assert "rule sweep_table" in output and len(re.findall(r"rule probe:", output)) == 36

    result = run_snakemake("-n", "--profile", "slurm", "tables/table1.csv", "--config", "scale=paper",
                           "--configfile", "paper.yaml", cwd=workflow_copy)  # fmt: skip
    output = output_of(result)
    assert result.returncode == 0, output[-5000:]
    pretrain = set(re.findall(r"wildcards: run=(\S+)\n\s+resources: .*nodes=2, .*gres=gpu:8", output))
    expected = {run for cell in sweeps.sweep_cells(TABLE1, "paper") for run in cell["runs"]}
    assert pretrain == expected and len(pretrain) == 61  # table 1's 63 cells in 59 runs, 2 more seeds
    assert "rule ablation_table" in output


def test_figure_1_longest_run_has_a_curve(pool):
    """A one-epoch run with more steps than any other is a single point, not a curve: the
    top-right panel takes the run with the most steps among those with 3 epochs or more."""
    frame, _ = pool
    single = frame[frame.run == frame.run.iloc[0]].head(1).assign(run="one_epoch", epoch=1, final_step=10**6)
    widened = pd.concat([frame, single], ignore_index=True)
    assert sweeps.longest_run(widened) == sweeps.longest_run(frame) != "one_epoch"
    assert sweeps.longest_run(single) == "one_epoch"  # no run has a curve: the most steps


# ---------------------------------------------------------------- the committed small-scale sweep


def test_readme_sweep_prose_matches_the_committed_table7_and_pool():
    """The README's sentences on table 7 and on figures 1 and 11, recomputed from
    tables/table7.csv and figures/data/fig{1,11}.csv."""
    readme = " ".join((REPO / "README.md").read_text().split())
    table = pd.read_csv(REPO / "tables" / "table7.csv")
    assert (table.scale == "small").all()
    for line in sweeps.sweep_checks(table):
        assert f"- {line}" in (REPO / "tables" / "table7.md").read_text() and line in readme, line
    ok = table.dropna(subset=["accuracy"])
    assert f"{len(ok.runs.str.split().explode())} runs of {int(ok.steps.iloc[0])} steps" in readme
    assert f"{round(ok.pretrain_wall_s.sum() / 60)} min of pretraining" in readme

    grid = ok.pivot_table(index="views", columns="lam", values="accuracy")
    paper = table.dropna(subset=["paper"]).groupby("views").paper
    ratios = (grid.max(axis=1) - grid.min(axis=1)) / (paper.max() - paper.min())
    assert f"spreads {ratios.min():.1f}-{ratios.max():.1f} times" in readme
    near = grid.loc[:, [0.005, 0.01, 0.02]]
    assert f"at most {(near.max(axis=1) - near.min(axis=1)).max():.2f} points" in readme
    ordered = [lam for lam in grid.columns if (grid.loc[8, lam] > grid.loc[4, lam] > grid.loc[2, lam])]
    assert ordered == [lam for lam in grid.columns if lam <= 0.15]
    assert "at every λ ≤ 0.15" in readme

    fig1 = pd.read_csv(REPO / "figures" / "data" / "fig1.csv")
    left = fig1[fig1.panel == "top_left"]
    assert f"over the {len(left)} epochs of {left.run.iloc[0]}" in readme
    assert f"is {left.spearman.iloc[0]:.2f} % (paper: 94.52 %)" in readme
    fig11 = pd.read_csv(REPO / "figures" / "data" / "fig11.csv")
    group = fig11[fig11.group == "resnet18, cifar10"].set_index("alpha")
    assert f"over the {group.runs.iloc[0]} resnet18 CIFAR-10 runs" in readme
    assert (f"is {group.spearman.loc[0.0]:.1f} % at α = 0 and {group.spearman.loc[0.4]:.1f} % at α = 0.4, "
            f"its highest at α = {group.spearman.idxmax():g}") in readme  # fmt: skip
    pool = sweeps.pool_runs(sweeps.read_pool(REPO / "tables" / "loss_pool.csv"))
    table7 = sweeps.alpha_curve(pool[pool.sweep == "table7"], [0.0, 0.4]).set_index("alpha").spearman
    assert (f"With table 7's {(pool.sweep == 'table7').sum()} runs alone it is {table7.loc[0.0]:.1f} % at α = 0 "
            f"and {table7.loc[0.4]:.1f} % at α = 0.4") in readme  # fmt: skip
    everything = fig11[fig11.group == "all runs"].set_index("alpha")
    assert f"Over all {everything.runs.iloc[0]} runs" in readme
    assert f"{everything.spearman.loc[0.0]:.1f} % at α = 0." in readme


def test_readme_table1_prose_matches_the_committed_table():
    """Each part's summary line of tables/table1.md, recomputed from tables/table1.csv (cells,
    spread, differences beyond the seed noise by the rule written out here) and quoted in the
    README; the noise sigma is the std of the default cell's seeds."""
    frame = pd.read_csv(REPO / "tables" / "table1.csv")
    assert (frame.scale == "small").all()
    markdown = (REPO / "tables" / "table1.md").read_text()
    readme = " ".join((REPO / "README.md").read_text().split())
    reference = frame[frame.reference.fillna(False).astype(bool)].iloc[0]
    sigma, n_ref = reference["std"], int(reference["seeds"])
    assert sigma == pytest.approx(frame.noise_std.iloc[0]) and n_ref == 3
    for part, rows in frame.groupby("part", sort=False):
        measured = rows.dropna(subset=["accuracy"])
        if len(measured) < 2:
            continue
        others = measured[~measured.reference.fillna(False).astype(bool)]
        threshold = 2 * sigma * np.sqrt(1 / others.seeds + 1 / n_ref)
        beyond = int(((others.accuracy - reference.accuracy).abs() > threshold).sum())
        spread = measured.accuracy.max() - measured.accuracy.min()
        line = (f"Ours: {len(measured)} cells, spread {spread:.2f} points, {beyond} of {len(measured) - 1} "
                f"differences beyond seed noise")  # fmt: skip
        assert line in markdown and line in readme, (part, line)


def test_readme_table1_findings_match_the_committed_table():
    """The README's sentences on table 1: the range of every cell, the slices in (d), one global
    view in (b) (ours and the paper's), batch 512, the runs and minutes behind it."""
    frame = pd.read_csv(REPO / "tables" / "table1.csv")
    ok = frame.dropna(subset=["accuracy"])
    readme = " ".join((REPO / "README.md").read_text().split())
    default = ok[ok.reference.astype(bool)].accuracy.iloc[0]
    assert (f"Every cell lies between {ok.accuracy.min():.2f} and {ok.accuracy.max():.2f} % "
            f"(default {default:.2f} %)") in readme  # fmt: skip
    d = ok[(ok.part == "d") & ~ok.reference.astype(bool)]
    many, few = d[d.num_slices == 1024], d[d.num_slices == 256]
    assert (many.label == "beyond seed noise").all() and (many.delta > 0).all()
    assert (few.delta < few.threshold).all()  # within noise or below
    assert f"every 1024-slice cell is {many.delta.min():.2f}-{many.delta.max():.2f} points above" in readme
    b = frame[frame.part == "b"].set_index(["n_global", "views"])
    ours = [b.accuracy[(2.0, v)] - b.accuracy[(1.0, v)] for v in (4.0, 8.0)]
    paper = [b.paper[(2.0, v)] - b.paper[(1.0, v)] for v in (4.0, 8.0)]
    assert all(b.label[(1.0, v)] == "within seed noise" for v in (4.0, 8.0))
    assert (f"V_g = 1 is {ours[0]:.2f} (V = 4) and {ours[1]:.2f} (V = 8) points below V_g = 2, within seed "
            f"noise; the paper loses {paper[0]:.2f} and {paper[1]:.2f} points") in readme  # fmt: skip
    c = frame[frame.part == "c"].set_index("batch_size")
    assert c.label[512.0] == "beyond seed noise" and c.paper.idxmax() == 512.0
    assert f"It is {-c.delta[512.0]:.2f} points below the default (beyond noise)" in readme
    runs = {run for entry in ok.runs for run in entry.split()}
    table7 = {run for entry in pd.read_csv(REPO / "tables" / "table7.csv").runs.dropna() for run in entry.split()}
    assert f"{len(runs - table7)} new runs beside table 7's 3 seeds" in readme
    assert f"{sum(ok.drop_duplicates('runs').pretrain_wall_s) / 60:.0f} min of pretraining" in readme
    assert f"Seed noise σ = {ok.noise_std.iloc[0]:.2f} points" in readme
    assert f"|Δ| > {2 * ok.noise_std.iloc[0] * np.sqrt(1 + 1 / 3):.2f} points" in readme
