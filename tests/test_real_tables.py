"""The real-data table layer: the paper's numbers as transcribed, the cells a table plans at
each scale, what it says when data cannot be had, the assembly and its checks, and the
tiny-scale tables 3 and 5 and figure 12 built end to end through Snakemake.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import FASTER_TINY_SCALE, output_of, run_snakemake, write_yaml

from lejepa import tables
from lejepa.data import DATASETS, unavailable_reason

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "datasets"
TABLES = yaml.safe_load((REPO / "config" / "tables.yaml").read_text())["tables"]


# ---------------------------------------------------------------- the paper's numbers


# The averages the paper prints in table 2's last column (TARGETS.md), per row and probe.
PAPER_TABLE2_AVERAGES = {
    "lejepa_vitl": (29.55, 60.95, 79.48),
    "lejepa_convnextv2h": (31.58, 60.70, 77.56),
    "ijepa_in1k": (30.20, 60.51, 78.50),
    "ijepa_stop": (32.05, 62.92, 80.70),
    "ijepa_in22k": (35.15, 63.28, 80.82),
}


@pytest.mark.parametrize("row", sorted(PAPER_TABLE2_AVERAGES))
def test_table2_transcription_averages_to_the_papers_average_column(row):
    paper = TABLES["table2"]["rows"][row]["paper"]
    for probe, average in zip(["linear_1shot", "linear_10shot", "linear"], PAPER_TABLE2_AVERAGES[row]):
        assert np.mean(paper[probe]) == pytest.approx(average, abs=0.006), (row, probe)


def test_table5_resnet18_and_table3_headline_numbers_match_targets():
    # TARGETS.md: resnet18 74.57, 69.94, 73.57, 92.36, 92.51, 75.32; table 3 frozen / all:
    # ResNet-34 78.17 vs DINOv3 71.38, fine-tuned 83.28 vs 81.60; one shot 31.08 vs 30.17.
    assert TABLES["table5"]["rows"]["resnet18"]["paper"]["linear"] == [74.57, 69.94, 73.57, 92.36, 92.51, 75.32]
    rows = TABLES["table3"]["rows"]
    assert rows["resnet34"]["paper"]["linear"][0] == 78.17 and rows["dinov3_vits16"]["paper"]["linear"][0] == 71.38
    assert rows["resnet34"]["paper"]["finetune"][0] == 83.28 and rows["dinov3_vits16"]["paper"]["finetune"][0] == 81.60
    assert rows["resnet34"]["paper"]["linear_1shot"][0] == 31.08
    assert rows["dinov3_vits16"]["paper"]["linear_1shot"][0] == 30.17


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_paper_row_has_one_number_per_column(name):
    table = TABLES[name]
    for row in table["rows"].values():
        for probe, values in row.get("paper", {}).items():
            assert probe in table["probes"] and len(values) == len(table["columns"])


# ---------------------------------------------------------------- cells


TOY_TABLE = {
    "title": "toy",
    "claim": "in-domain beats transfer",
    "columns": {"a": "A", "b": "B", "c": "C"},
    "probes": ["linear_1shot", "linear"],
    "rows": {
        "ours": {"label": "LeJEPA", "paper": {"linear": [80.0, 70.0, 60.0]}},
        "floor": {"label": "random"},
        "paper_only": {"label": "big model", "paper": {"linear_1shot": [10.0, None, 30.0]}},
    },
    "checks": [{"above": "ours", "than": "floor"}],
    "scales": {
        "small": {
            "datasets": {"a": "data_a", "b": "data_b", "c": "data_c"},
            "runs": {"ours": {"b": "special_b", "*": "{dataset}_net"}, "floor": "random_net"},
            "probes": ["linear"],
        }
    },
}
TOY_KINDS = {
    "data_a_net": "pretrained", "special_b": "pretrained", "data_c_net": "pretrained", "random_net": "random_init"
}  # fmt: skip


def toy_cells(unavailable=lambda name: None):
    return tables.table_cells(
        TOY_TABLE,
        scale="small",
        run_kind=lambda run: TOY_KINDS[run],
        pretrain_dataset=lambda run: {"special_b": "data_b", "data_a_net": "data_a", "data_c_net": "pretrain_c"}[run],
        unavailable=unavailable,
    )


def test_cells_expand_runs_per_column_and_skip_what_has_neither_run_nor_paper():
    cells = {(c["row"], c["probe"], c["column"]): c for c in toy_cells()}
    assert cells[("ours", "linear", "a")]["run"] == "data_a_net"
    assert cells[("ours", "linear", "b")]["run"] == "special_b"
    assert cells[("ours", "linear", "c")]["result"] == "results/data_c_net/linear/data_c.json"
    # linear_1shot is not run at this scale, and only paper_only has a number for it
    assert cells[("paper_only", "linear_1shot", "a")]["status"] == "not run at small scale"
    assert ("paper_only", "linear_1shot", "b") not in cells
    assert ("ours", "linear_1shot", "a") not in cells
    # 3 columns x (ours, floor) of linear + paper_only's two 1-shot numbers
    assert len(cells) == 8


def test_a_cell_whose_data_cannot_be_had_says_why_and_plans_nothing():
    missing = {"data_b": "needs download: https://example.org/b.tar", "pretrain_c": "not in the mirror"}
    cells = {(c["row"], c["column"]): c for c in toy_cells(unavailable=missing.get) if c["probe"] == "linear"}
    assert cells[("ours", "b")]["status"] == "data_b: needs download: https://example.org/b.tar"
    assert cells[("ours", "b")]["result"] is None
    assert cells[("floor", "b")]["result"] is None  # a random init still needs the probed data
    assert cells[("ours", "c")]["status"] == "pretraining data pretrain_c: not in the mirror"
    assert cells[("floor", "c")]["status"] == "planned"  # a random init needs no pretraining data


def test_an_unknown_run_or_scale_is_an_error_naming_it():
    with pytest.raises(KeyError, match="data_a_net"):
        tables.table_cells(TOY_TABLE, scale="small", run_kind=lambda run: {}[run], pretrain_dataset=str,
                           unavailable=lambda name: None)  # fmt: skip
    with pytest.raises(ValueError, match="'paper'.*small"):
        tables.table_cells(TOY_TABLE, scale="paper", run_kind=str, pretrain_dataset=str, unavailable=str)


def toy_frame(accuracies: dict[tuple[str, str], float]):
    cells = toy_cells()
    results = {
        f"results/{c['run']}/linear/{c['dataset']}.json": {
            "status": "ok", "accuracy": accuracies[(c["row"], c["column"])], "std": 0.0, "seeds": [0], "num_train": 10
        }  # fmt: skip
        for c in cells
        if c["result"]
    }
    return tables.real_table_frame(
        "toy", TOY_TABLE, cells, scale="small", read_result=results.__getitem__,
        run_info=lambda run: {"backbone": "resnet18", "epochs": 3}, dataset_label=str.upper, commit="abc",
    )  # fmt: skip


def test_frame_puts_ours_beside_the_paper_and_checks_count_wins_by_brute_force():
    accuracies = {("ours", "a"): 50.0, ("ours", "b"): 20.0, ("ours", "c"): 40.0,
                  ("floor", "a"): 30.0, ("floor", "b"): 25.0, ("floor", "c"): 10.0}  # fmt: skip
    frame = toy_frame(accuracies)
    ours = frame[(frame.row == "ours") & (frame.probe == "linear")].set_index("column")
    assert ours.gap.to_dict() == {"a": -30.0, "b": -50.0, "c": -20.0}
    assert ours.loc["b", "dataset_label"] == "DATA_B" and (frame.commit == "abc").all()

    line = tables.check_above(frame, row="ours", than="floor")
    margins = [accuracies[("ours", c)] - accuracies[("floor", c)] for c in "abc"]
    wins = sum(m > 0 for m in margins)
    assert f"does not hold, in {wins} of 3 cells" in line
    assert f"margin {min(margins):+.1f} to {max(margins):+.1f}" in line and "linear b (-5.0)" in line

    markdown = tables.real_table_markdown(frame, TOY_TABLE)
    assert "| LeJEPA | 50.0 (80.00) | 20.0 (70.00) | 40.0 (60.00) |" in markdown
    assert "| big model | – (10.00) |" in markdown  # the paper-only row keeps the paper's number
    assert "mean -33.3 points" in markdown  # (-30 - 50 - 20) / 3


def test_ranking_check_compares_our_order_with_the_papers():
    frame = pd.DataFrame(
        {"row": ["x", "y", "z"], "probe": "linear", "column": "a", "accuracy": [50.0, 60.0, 40.0],
         "paper": [90.0, 80.0, 70.0]}  # fmt: skip
    )
    assert tables.check_ranking(frame, rows=["x", "y", "z"]) == [
        "linear, a: ours y > x > z; paper x > y > z (order differs)."
    ]


# ---------------------------------------------------------------- can the data be had?


def fake_mirror(root: Path, name: str) -> Path:
    (root / name).mkdir(parents=True)
    (root / name / "meta.json").write_text("{}")
    return root


def test_unavailable_reason_reads_the_mirror_the_prepared_data_and_the_download_folder(tmp_path):
    mirror = fake_mirror(tmp_path / "mirror", "cifar10")
    data = tmp_path / "data"
    assert unavailable_reason("cifar10", root=data, mirror_dir=mirror) is None
    reason = unavailable_reason("cifar100", root=data, mirror_dir=mirror)
    assert reason.startswith("needs download: https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz")
    assert "galaxy10" in unavailable_reason("galaxy10", root=data, mirror_dir=mirror)
    # prepared already: nothing to fetch
    fake_mirror(data, "cifar100")
    assert unavailable_reason("cifar100", root=data, mirror_dir=mirror) is None


def test_unavailable_reason_for_downloads_and_imagenet(tmp_path):
    offline = lambda host: f"{host} unreachable"  # noqa: E731
    reason = unavailable_reason("pets", root=tmp_path, source="download", check_host=offline)
    url = "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz"
    assert reason == f"needs download: {url} (www.robots.ox.ac.uk unreachable)"
    assert unavailable_reason("pets", root=tmp_path, source="download", check_host=lambda host: None) is None
    assert "ImageNet-1k" in unavailable_reason("imagenet10", root=tmp_path, imagenet_dir=None)
    (tmp_path / "inet" / "train").mkdir(parents=True)
    assert unavailable_reason("imagenet10", root=tmp_path, imagenet_dir=tmp_path / "inet") is None


# ---------------------------------------------------------------- through Snakemake


@pytest.fixture
def tiny_workflow(workflow_copy, require_shared):
    require_shared("datasets/flowers102/meta.json", "the offline dataset mirror the tiny tables are prepared from")
    copy = workflow_copy
    write_yaml({"data": {"mirror_dir": str(MIRROR)}}, copy / "mirror.yaml")
    return copy


def test_misspelt_target_answers_in_one_line(workflow_copy):
    result = run_snakemake("-n", "tables/tabel2.csv", cwd=workflow_copy)
    assert result.returncode == 1
    last = [line for line in output_of(result).splitlines() if line.strip()][-1]
    expected = "tables/tabel2.csv is not a target of this workflow; nearest: tables/table2.csv"
    assert last.startswith(expected), output_of(result)


@pytest.mark.slow
def test_paper_scale_plans_gpu_pretraining_and_says_what_is_missing(tiny_workflow):
    copy = tiny_workflow
    (copy / "imagenet" / "train").mkdir(parents=True)
    write_yaml({"data": {"imagenet_dir": "imagenet", "mirror_dir": str(MIRROR)}}, copy / "paper.yaml")
    result = run_snakemake("-n", "--profile", "slurm", "tables/table2.csv", "--config", "scale=paper",
                           "--configfile", "paper.yaml", cwd=copy)  # fmt: skip
    output = output_of(result)
    assert result.returncode == 0, output
    pretrain = re.findall(r"wildcards: run=(\S+)\n\s+resources: (.+)", output)
    assert {run for run, _ in pretrain} == {"imagenet_vit_large_patch14_paper", "imagenet_convnextv2_huge_paper"}
    # the ImageNet runs of the paper ask for 2 nodes x 8 GPUs (config/pretrain.yaml)
    assert all("nodes=2" in resources and "gres=gpu:8" in resources and "mem_mb=256000" in resources
               for _, resources in pretrain), pretrain  # fmt: skip
    # what the mirror lacks is not planned: no job prepares aircraft, cars, cifar100 or pets
    assert not re.search(r"prepare_(aircraft|cars|cifar100|pets)\b", output)
    assert "prepare_cifar10" in output and "rule real_table" in output


@pytest.mark.slow
def test_tiny_tables_3_and_5_and_figure_12_end_to_end(tiny_workflow):
    targets = ["tables/table3.csv", "tables/table5.csv", "figures/fig12.pdf"]
    write_yaml(FASTER_TINY_SCALE, tiny_workflow / "faster.yaml")
    result = run_snakemake("--cores", "2", *targets, "--config", "scale=tiny", "--configfile", "mirror.yaml",
                           "faster.yaml", cwd=tiny_workflow, timeout=900)  # fmt: skip
    assert result.returncode == 0, output_of(result)[-5000:]

    table3 = pd.read_csv(tiny_workflow / "tables" / "table3.csv")
    assert (table3.scale == "tiny").all()
    ok = table3[table3.status == "ok"]
    assert set(ok.row) == {"resnet18", "transfer", "random_init"} and set(ok.column) == {"flowers102"}
    for entry in ok.itertuples():  # the table holds exactly what the probe wrote
        result_json = json.loads((tiny_workflow / entry.result).read_text())
        assert entry.accuracy == pytest.approx(result_json["accuracy"]) and 0 <= entry.accuracy <= 100
    galaxy = table3[(table3.column == "galaxy10") & table3.run.notna()]
    assert len(galaxy) and galaxy.status.str.contains("needs download: https://zenodo.org").all()
    frontier = table3[table3.run == "dinov2_vits14"].dropna(subset=["result"])
    assert len(frontier) and frontier.status.str.startswith("weights unreachable").all()
    assert frontier.accuracy.isna().all()
    in_domain = ok[(ok.row == "resnet18") & (ok.probe == "linear")].iloc[0]
    assert in_domain.paper == 74.57 and in_domain.gap == pytest.approx(in_domain.accuracy - 74.57)
    # the copy has no git history: the provenance names the device, and the commit as unknown
    assert in_domain.epochs == 2 and in_domain.pretrain_device.startswith("cpu: ")
    assert in_domain.pretrain_commit == "unknown"

    markdown = (tiny_workflow / "tables" / "table3.md").read_text()
    assert "Scale **tiny**" in markdown and "n/a [1]" in markdown and "needs download: https://zenodo.org" in markdown
    table5 = pd.read_csv(tiny_workflow / "tables" / "table5.csv")
    assert set(table5[table5.status == "ok"].dataset) == {"flowers102", "food10"}
    assert "food10 (stand-in for Food101)" in (tiny_workflow / "tables" / "table5.md").read_text()
    assert (tiny_workflow / "figures" / "fig12.png").stat().st_size > 10_000


# ---------------------------------------------------------------- the committed small-scale tables


@pytest.mark.parametrize("name", ["table2", "table3", "table4", "table5", "fig9"])
def test_committed_tables_say_what_their_numbers_show(name):
    """Every sentence of 'What our run shows' in tables/<name>.md and in the README is
    recomputed here from the committed tables/<name>.csv."""
    csv = REPO / "tables" / f"{name}.csv"
    frame = pd.read_csv(csv)
    assert (frame.scale == "small").all(), f"{csv} is not the small-scale table"
    ok = frame[frame.status == "ok"]
    assert len(ok) and ok.accuracy.between(0, 100).all()
    assert np.allclose(ok.dropna(subset=["paper"]).gap, (ok.accuracy - ok.paper).dropna())
    lines = tables.real_table_checks(frame, TABLES[name].get("checks", []))
    markdown = (REPO / "tables" / f"{name}.md").read_text()
    readme = (REPO / "README.md").read_text()
    for line in lines:
        assert f"- {line}" in markdown, line
        assert line in readme, line


def test_readme_run_budgets_match_the_committed_tables():
    """The README's prose on table 3: epochs, minutes and the 4.4x more images of transfer."""
    frame = pd.read_csv(REPO / "tables" / "table3.csv").dropna(subset=["pretrain_wall_s"]).drop_duplicates("run")
    runs = frame.set_index("run")
    transfer = runs.loc["tinyimagenet100_resnet18"]
    in_domain = runs.loc[["flowers102_resnet18", "flowers102_resnet34", "flowers102_resnext26ts"]]
    assert transfer.epochs == 4 and round(transfer.pretrain_wall_s / 60) == 30
    assert (in_domain.epochs == 20).all() and in_domain.pretrain_wall_s.between(9 * 60, 15 * 60).all()
    images = {name: DATASETS[name].sizes["train"] for name in ("tinyimagenet100", "flowers102")}
    ratio = transfer.epochs * images["tinyimagenet100"] / (20 * images["flowers102"])
    assert f"{ratio:.1f} times more images" in (REPO / "README.md").read_text()


def test_readme_table5_prose_matches_the_committed_table():
    """The README's prose on table 5: runs, minutes of pretraining, the margin over the floor
    and that resnext26ts is last in every column we ran."""
    frame = pd.read_csv(REPO / "tables" / "table5.csv")
    runs = frame.dropna(subset=["pretrain_wall_s"]).drop_duplicates("run")
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"{len(runs)} runs, {round(runs.pretrain_wall_s.sum() / 60)} min of pretraining" in readme
    ok = frame[frame.status == "ok"].pivot_table(index="row", columns="column", values="accuracy")
    margins = ok.loc["resnet18"] - ok.loc["random_init"]
    assert f"{margins.min():.0f}-{margins.max():.0f} points above the random-init floor" in readme
    architectures = ok.loc[["resnet18", "resnet34", "resnext26ts"]].dropna(axis=1)
    others = architectures.drop(index="resnext26ts")
    assert architectures.shape[1] == 4 and (architectures.loc["resnext26ts"].round(1) <= others.min().round(1)).all()
    tied = architectures.loc["resnext26ts"].round(1) == others.min().round(1)
    assert list(tied[tied].index) == ["inet10"] and round(architectures.loc["resnet18", "inet10"], 1) == 34.8
    assert "is last or tied for last in all four of ours (on tinyimagenet10 it ties resnet18 at 34.8)" in readme
    leader = architectures.idxmax()
    assert list(leader[leader == "resnet34"].index) == ["cifar10", "food101", "inet10"]


def test_readme_table4_prose_matches_the_committed_table():
    """The README's prose on table 4: projector depth per backbone, the predictor's cost at 3
    layers (ours and the paper's), the steps each run took and where it ran."""
    frame = pd.read_csv(REPO / "tables" / "table4.csv")
    cells = frame[frame.status == "ok"].set_index(["row", "column"])
    readme = " ".join((REPO / "README.md").read_text().split())

    def depth(backbone):
        return " / ".join(f"{cells.accuracy[('plain', f'{backbone}_{layers}')]:.1f}" for layers in (1, 2, 3))

    assert f"resnet18 {depth('resnet50')}, ViT-tiny/8 {depth('vitt8')}" in readme
    ours = [cells.accuracy[("plain", c)] - cells.accuracy[("pred", c)] for c in ("resnet50_3", "vitt8_3")]
    paper = [cells.paper[("pred", c)] - cells.paper[("plain", c)] for c in ("resnet50_3", "vitt8_3")]
    assert (f"A predictor costs {ours[0]:.1f} points (resnet18) and {ours[1]:.1f} points (ViT-tiny/8) at 3 layers "
            f"(the paper: {paper[0]:+.1f} and {paper[1]:+.1f})") in readme  # fmt: skip
    runs = frame.dropna(subset=["pretrain_wall_s"]).drop_duplicates("run")
    assert len(runs) == 12 and (runs.pretrain_device == "cuda: NVIDIA H200").all()
    assert runs.pretrain_commit.nunique() == 1 and f"commit {runs.pretrain_commit.iloc[0]}" in readme
    assert round(runs.pretrain_wall_s.median() / 60) == 4 and "about 4 min each" in readme
    steps = {int(pd.read_csv(REPO / "docs" / "runs" / run / "metrics.csv").step.iloc[-1]) for run in runs.run}
    assert steps == {348} and "in 348 steps" in readme


def test_readme_fig9_prose_matches_the_committed_table():
    """The README's prose on figure 9: the range over the pretrained models, which end below
    the random-init floor, and how many of the 8 were run."""
    frame = pd.read_csv(REPO / "tables" / "fig9.csv")
    ok = frame[frame.status == "ok"].set_index("row")
    pretrained = ok[ok.run_kind == "pretrained"].accuracy
    floor = ok.accuracy["random_init"]
    below = pretrained[pretrained < floor]
    readme = " ".join((REPO / "README.md").read_text().split())
    span = f"top-1 from {pretrained.min():.1f} to {pretrained.max():.1f} %"
    assert f"for {len(pretrained)} of the 8 models: {span}" in readme
    assert set(below.index) == {"convnext_atto", "efficientnet_b0", "mobilenetv3_large_100"}
    assert (f"convnext_atto ({below['convnext_atto']:.1f}), efficientnet_b0 ({below['efficientnet_b0']:.1f}) and "
            f"mobilenetv3_large_100 ({below['mobilenetv3_large_100']:.1f}) end below the random-init resnet18 "
            f"floor ({floor:.1f})") in readme  # fmt: skip
    cpu_minutes = ok.pretrain_wall_s["mobilenetv3_large_100"] / 60
    assert ok.pretrain_device["mobilenetv3_large_100"].startswith("cpu")
    assert f"mobilenetv3_large_100 on the 2 CPU cores ({cpu_minutes:.1f} min)" in readme
