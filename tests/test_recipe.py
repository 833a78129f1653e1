"""lejepa.recipe (the budget-fitted schedule: pure arithmetic) and its command line
bench/recipe.py, one tiny end-to-end run."""

import hashlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_train_config

from lejepa import recipe, train

REPO = Path(__file__).resolve().parents[1]


def run_bench(*arguments) -> subprocess.CompletedProcess:
    """python bench/recipe.py <arguments>, one thread, output captured."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(REPO / "bench" / "recipe.py"), *map(str, arguments)]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)

# ---------------------------------------------------------------- the schedule


def test_total_steps_scale_linearly_with_the_budget():
    step_s, full = 0.75, 195  # e.g. CIFAR-10: 50000 images / batch 256
    for minutes in (1, 2, 5, 10, 20, 40, 60):
        budget = 60 * minutes
        plan = recipe.fit_schedule(budget_s=budget, step_s=step_s, full_epoch_steps=full, warmup_fraction=0.1)
        epochs = plan["epochs"]
        # without overheads: floor(B / s) steps, minus at most E - 1 lost to equal-length epochs
        assert budget / step_s - epochs < plan["total_steps"] <= budget / step_s
        assert plan["steps_per_epoch"] <= full
        if epochs > 1:  # the fewest epochs: one fewer would need more steps than a pass over the data holds
            assert math.floor(budget / step_s / (epochs - 1)) > full
        assert plan["total_steps"] == epochs * plan["steps_per_epoch"]
        assert math.isclose(plan["warmup_epochs"], 0.1 * epochs)
    one = recipe.fit_schedule(budget_s=600, step_s=step_s, full_epoch_steps=full, warmup_fraction=0.1)
    four = recipe.fit_schedule(budget_s=2400, step_s=step_s, full_epoch_steps=full, warmup_fraction=0.1)
    assert abs(four["total_steps"] - 4 * one["total_steps"]) <= 4 * one["epochs"] + four["epochs"]


def test_schedule_with_overheads_fills_the_budget_and_no_more():
    kwargs = dict(step_s=1.1, full_epoch_steps=50, warmup_fraction=0.1, epoch_overhead_s=3.0, startup_s=5.0)
    for budget in (60.0, 300.0, 1234.0, 3600.0):
        plan = recipe.fit_schedule(budget_s=budget, **kwargs)
        e, s = plan["epochs"], plan["steps_per_epoch"]
        assert plan["predicted_s"] == pytest.approx(5.0 + e * (s * 1.1 + 3.0))
        assert plan["predicted_s"] <= budget < 5.0 + e * ((s + 1) * 1.1 + 3.0)  # one more step per epoch overshoots
        if e > 1:  # fewer epochs would need more steps than a pass over the data holds
            assert (budget - 5.0 - (e - 1) * 3.0) / ((e - 1) * 1.1) >= 51
    with pytest.raises(ValueError, match="no training step"):
        recipe.fit_schedule(budget_s=4.0, **kwargs)


def test_overrides_parse_as_yaml_and_fitted_keys_are_refused():
    assert recipe.parse_overrides(["lr=4e-3", "global_scale=[0.2, 1.0]", "projector=1024-128", "n_local=6"]) == {
        "lr": 0.004,
        "global_scale": [0.2, 1.0],
        "projector": "1024-128",
        "n_local": 6,
    }
    with pytest.raises(ValueError, match="epochs"):
        recipe.parse_overrides(["epochs=3"])
    with pytest.raises(ValueError, match="lr"):
        recipe.parse_overrides(["lr"])


# ---------------------------------------------------------------- end to end


def test_tiny_recipe_end_to_end(tiny_data_root, tmp_path):
    out = tmp_path / "recipe.jsonl"
    common = [
        "--dataset", "tiny", "--data-root", str(tiny_data_root), "--out", str(out), "--threads", "1",
        "--set", "backbone=test_resnet", "--set", "projector=32-16", "--set", "global_size=16",
        "--set", "local_size=8", "--set", "n_local=2", "--set", "batch_size=16", "--set", "num_slices=32",
        "--set", "workers=0", "--calibration-steps", "2",
    ]  # fmt: skip
    done = run_bench(*common, "--minutes", "0.1")
    assert done.returncode == 0, done.stderr[-3000:]
    saved = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(saved) == 1
    match = re.fullmatch(r"linear_probe_top1: (\d+\.\d+)", done.stdout.strip().splitlines()[-1])
    assert match and float(match.group(1)) == pytest.approx(saved[0]["probe_top1"], abs=0.006)
    fields = {
        "dataset", "setting", "minutes", "seed", "img_per_s", "engine_epochs", "steps", "epochs_reached",
        "final_loss", "final_prediction", "final_sigreg", "probe_top1", "calibration", "schedule", "curve", "config",
    }  # fmt: skip
    assert fields <= set(saved[0])
    first = saved[0]
    assert first["dataset"] == "tiny" and first["minutes"] == 0.1 and first["seed"] == 0
    assert re.fullmatch(r"[0-9a-f]{7,40}(-dirty)?|unknown", first["commit"])  # the code the row was made with
    assert 0.0 <= first["probe_top1"] <= 100.0 and first["num_probe_train"] == 96 and first["num_probe_test"] == 32
    # the engine ran the fitted schedule: E epochs of S steps, 96 images / batch 16 = at most 6 steps each
    schedule = first["schedule"]
    assert 1 <= schedule["steps_per_epoch"] <= 6
    assert first["steps"] == schedule["total_steps"] == first["curve"][-1]["step"]
    assert first["engine_epochs"] == schedule["epochs"] == len(first["curve"])
    assert first["epochs_reached"] == pytest.approx(first["steps"] * 16 / 96)
    assert first["config"]["backbone"] == "test_resnet" and first["config"]["global_size"] == 16
    assert all(np.isfinite([first["final_loss"], first["final_prediction"], first["final_sigreg"]]))

    done = run_bench(*common, "--minutes", "0.1", "--random-init")
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1].startswith("linear_probe_top1: ")
    assert len(out.read_text().splitlines()) == 2  # appended
    baseline = json.loads(out.read_text().splitlines()[1])
    assert baseline["steps"] == 0

    table = run_bench("--table", "--out", out).stdout.strip().splitlines()
    assert table[0].startswith("| # | dataset | setting |") and len(table) == 4
    assert table[3].startswith("| 2 |") and "random init" in table[3] and f"{baseline['probe_top1']:.2f}" in table[3]

    assert run_bench("--plot", tmp_path / "curves.png", "--rows", "1", "--out", out).returncode == 0
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    refused = run_bench("--plot", tmp_path / "none.png", "--rows", "2", "--out", out)
    assert refused.returncode == 1 and re.search("row 2 .*trained nothing", refused.stderr)
    refused = run_bench("--plot", tmp_path / "none.png", "--rows", "3", "--out", out)
    assert refused.returncode == 1 and "rows 1..2" in refused.stderr


def test_probe_resolution_end_to_end(tiny_data_root, tiny_dataset, tmp_path):
    """bench/probe_resolution.py on a tiny trained encoder: a row per size, each naming the
    checkpoint by its sha256, and the last line names the best size."""
    run = tmp_path / "run"
    train.main(tiny_train_config(tiny_dataset, run, epochs=1))
    out = tmp_path / "sizes.jsonl"
    command = [
        sys.executable, str(REPO / "bench" / "probe_resolution.py"), "--checkpoint", str(run / "final.pt"),
        "--sizes", "16", "24", "--label", "tiny", "--data-root", str(tiny_data_root), "--threads", "1",
        "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["size"] for row in rows] == [16, 24] and {row["global_size"] for row in rows} == {16}
    assert {row["checkpoint_sha256"] for row in rows} == {hashlib.sha256((run / "final.pt").read_bytes()).hexdigest()}
    assert all(row["dataset"] == "tiny" and row["num_probe_test"] == 32 for row in rows)
    best = max(rows, key=lambda row: row["probe_top1"])
    gain = best["probe_top1"] - rows[0]["probe_top1"]
    expected = f"best_size: {best['size']} (top-1 {best['probe_top1']:.2f}, {gain:+.2f} points over global_size)"
    assert done.stdout.strip().splitlines()[-1] == expected


def committed_rows() -> list[dict]:
    """bench/results/recipe.jsonl, a dict per row (row N is index N - 1)."""
    return [json.loads(line) for line in (REPO / "bench" / "results" / "recipe.jsonl").read_text().splitlines()]


def test_committed_rows_carry_their_commit():
    """Every row of bench/results/recipe.jsonl names the code it was made with; the rows from
    before the bench recorded it say unknown and name the commit that added them."""
    rows = committed_rows()
    assert rows
    for number, row in enumerate(rows, 1):
        assert re.fullmatch(r"[0-9a-f]{7,40}(-dirty)?|unknown", row["commit"]), number
        if row["commit"] == "unknown":
            assert re.fullmatch(r"[0-9a-f]{7,40}", row["added_in_commit"]), number


def test_docs_resolution_table_is_the_committed_rows():
    """docs/recipe.md's table of rows 15 on, recomputed from bench/results/recipe.jsonl."""
    rows = committed_rows()
    text = (REPO / "docs" / "recipe.md").read_text()
    section = text[text.index("## Keeping resolution") : text.index("## Flowers102")]
    lines = [line for line in section.splitlines() if re.match(r"\| \d+ \|", line)]
    prose = " ".join(section.split())
    assert len(lines) >= 3
    for line in lines:
        number, _, minutes, steps, img_per_s, passes, top1 = [cell.strip() for cell in line.strip("|").split("|")]
        row = rows[int(number) - 1]
        assert float(minutes) == row["minutes"] and int(steps) == row["steps"], number
        assert img_per_s == f"{row['img_per_s']:.0f}" and passes == f"{row['epochs_reached']:.2f}", number
        assert top1 == f"{row['probe_top1']:.2f}", number
    default, old = rows[14], rows[10]
    assert default["setting"] == "default" and old["setting"] == "projector=512-512-128 lam=0.02"
    assert f"{default['probe_top1']:.2f} against row 11's {old['probe_top1']:.2f}" in prose
    assert f"{default['steps']} steps where row 11 trained {old['steps']}" in prose
    stem = rows[16]
    assert stem["setting"] == "small_stem=stride1_maxpool"
    assert f"{default['img_per_s'] / stem['img_per_s']:.1f} times fewer images per second" in prose
    assert f"ends {default['probe_top1'] - stem['probe_top1']:.0f} points lower" in prose
    long, before = rows[17], rows[11]
    assert long["setting"] == "global_size=48" and long["minutes"] == before["minutes"] == 60
    assert (f"(row 18, {long['epochs_reached']:.2f} passes) reach {long['probe_top1']:.2f}, "
            f"{long['probe_top1'] - before['probe_top1']:.2f} points above row 12's {before['probe_top1']:.2f} "
            f"(the 32-px default, {before['epochs_reached']:.2f} passes") in prose  # fmt: skip
    today = rows[18]
    assert today["setting"] == "default" and today["minutes"] == 60
    assert (f"(row 19, {today['epochs_reached']:.2f} passes) reach {today['probe_top1']:.2f}. That is "
            f"{today['probe_top1'] - long['probe_top1']:.2f} points above row 18") in prose  # fmt: skip
    assert f"and {today['probe_top1'] - before['probe_top1']:.2f} above row 12" in prose
    assert f"row 19 is {65 - today['probe_top1']:.2f} points short" in prose
    fewer = rows[19]
    assert fewer["setting"] == "n_local=2" and fewer["minutes"] == 60
    assert (f"train {fewer['img_per_s'] / today['img_per_s']:.2f} times the images per second "
            f"({fewer['epochs_reached']:.2f} passes) and reach {fewer['probe_top1']:.2f}, "
            f"{fewer['probe_top1'] - today['probe_top1']:.2f} points above row 19") in prose  # fmt: skip
    assert f"still {65 - fewer['probe_top1']:.2f} points short of 65 %" in prose
    assert f"took {fewer['train_wall_s']:.0f} s of the 3600 s budget" in prose


def local_views_top1(rows: list[dict]) -> dict[int, list[float]]:
    """n_local -> the linear-probe top-1 of seeds 0 and 1 at 60 minutes (rows 19-22)."""
    top1 = {}
    for n_local, numbers in ((4, (19, 22)), (2, (20, 21))):
        pair = [rows[number - 1] for number in numbers]
        assert [row["seed"] for row in pair] == [0, 1] and {row["minutes"] for row in pair} == {60}
        assert {row["config"]["n_local"] for row in pair} == {n_local}
        top1[n_local] = [row["probe_top1"] for row in pair]
    return top1


def test_docs_two_seeds_of_the_local_views_at_60_minutes():
    """docs/recipe.md's comparison of 2 and 4 local views over two seeds, recomputed."""
    rows = committed_rows()
    top1 = local_views_top1(rows)
    mean = {n_local: sum(values) / 2 for n_local, values in top1.items()}
    text = (REPO / "docs" / "recipe.md").read_text()
    prose = " ".join(text[text.index("**A second seed of both**") : text.index("### Probing at a larger size")].split())
    assert f"2 local views reach {top1[2][1]:.2f} and 4 reach {top1[4][1]:.2f}" in prose
    assert (f"2 local views average {mean[2]:.2f} and 4 average {mean[4]:.2f}, "
            f"{mean[2] - mean[4]:.2f} points apart") in prose  # fmt: skip
    assert (f"differ by {abs(top1[2][0] - top1[2][1]):.2f} (2 local views) and "
            f"{abs(top1[4][0] - top1[4][1]):.2f} (4)") in prose  # fmt: skip
    assert all(a > b for a, b in zip(top1[2], top1[4]))  # "2 local views win with each seed"
    assert f"The 2-seed mean of the default is {65 - mean[2]:.2f} points short of 65 %" in prose
    assert f"row 21 trained {rows[20]['train_wall_s']:.0f} s of its 3600 s budget" in prose
    assert f"planned {rows[21]['steps']} steps to row 19's {rows[18]['steps']}" in prose


def probe_resolution_rows() -> list[dict]:
    path = REPO / "bench" / "results" / "probe_resolution.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_docs_probe_resolution_table_is_the_committed_rows():
    """docs/recipe.md's probe sizes, recomputed from bench/results/probe_resolution.jsonl: one
    encoder (row 19's), whose 32-px probe is row 19's number again."""
    rows, encoder = probe_resolution_rows(), committed_rows()[18]
    assert len({row["checkpoint_sha256"] for row in rows}) == 1 and "row 19" in rows[0]["label"]
    text = (REPO / "docs" / "recipe.md").read_text()
    section = text[text.index("### Probing at a larger size") : text.index("## Flowers102")]
    lines = [line for line in section.splitlines() if re.match(r"\| \d+ px", line)]
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows):
        size, extract_s, top1 = [cell.strip() for cell in line.strip("|").split("|")]
        assert size.startswith(f"{row['size']} px") and extract_s == f"{row['extract_s']:.0f}", line
        assert top1 == f"{row['probe_top1']:.2f}", line
    by_size = {row["size"]: row["probe_top1"] for row in rows}
    assert by_size[encoder["config"]["global_size"]] == encoder["probe_top1"]
    best = max(by_size, key=by_size.get)
    prose = " ".join(section.split())
    assert f"The best size, {best} px, adds {by_size[best] - by_size[32]:.2f} points" in prose
    assert f"64 px adds {by_size[64] - by_size[32]:.2f}" in prose


def test_readme_recipe_results_are_the_committed_rows():
    """The README's "Results so far" rows that name a row of bench/results/recipe.jsonl: its
    epochs (rounded) and linear-probe top-1."""
    rows = committed_rows()
    readme = (REPO / "README.md").read_text()
    found = re.findall(r"^\| [^|\n]*recipe\.jsonl row (\d+)[^|\n]* \| (\d+) \| ([\d.]+) \|", readme, flags=re.M)
    assert len(found) >= 2
    for number, epochs, linear in found:
        row = rows[int(number) - 1]
        assert int(epochs) == round(row["epochs_reached"]) and linear == f"{row['probe_top1']:.1f}", number
    prose = " ".join(readme.split())
    today, wider = rows[18], rows[17]
    assert f"{today['probe_top1'] - wider['probe_top1']:.1f} points above 48-px ones" in prose
    fewer = rows[19]
    assert f"(row 20) are {fewer['probe_top1'] - today['probe_top1']:.1f} points above row 19" in prose
    two_seeds = {n_local: sum(values) / 2 for n_local, values in local_views_top1(rows).items()}
    assert f"2 local views average {two_seeds[2]:.1f} and 4 average {two_seeds[4]:.1f}" in prose
    assert (f"At row 20's {fewer['img_per_s']:.0f} images per second that is about "
            f"{10 * fewer['num_train'] / fewer['img_per_s'] / 60:.0f} min of training") in prose
    by_size = {row["size"]: row["probe_top1"] for row in probe_resolution_rows()}
    assert f"at 40 px instead of 32 adds {by_size[40] - by_size[32]:.1f} points" in prose
