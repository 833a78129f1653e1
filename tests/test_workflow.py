"""The Snakemake workflow: targets, lint, formatting, config validation, rerun scope,
failure cleanup, report, and table 6's assembly.

Snakemake runs in a temporary copy of the workflow so that the repository's own
figures/ and tables/ are never touched.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import output_of, run_snakemake, write_yaml

from lejepa import tables

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

# The synthetic figures of the paper (TARGETS.md, issue 4) and what each rule writes.
SYNTHETIC_FIGURES = ["fig2", "fig3", "fig4", "fig5", "fig6", "fig7", "fig15", "fig16", "fig17", "fig18", "fig20"]
SYNTHETIC_TARGETS = {
    path
    for figure in SYNTHETIC_FIGURES
    for path in (f"figures/{figure}.pdf", f"figures/{figure}.png", f"figures/data/{figure}.csv")
} | {"tables/table6.csv", "tables/table6.md"}

# Writes the outputs of a figure rule without running the experiment (DAG-level tests).
STUB_SCRIPT = """
from pathlib import Path
Path(snakemake.log[0]).write_text("stub\\n")
for path in snakemake.output:
    Path(path).write_text("stub\\n")
"""

# Writes the CSV, then fails as a crashing draw function would.
FAILING_SCRIPT = """
from pathlib import Path
Path(snakemake.output.csv).write_text("x\\n1\\n")
raise RuntimeError("drawing failed on purpose")
"""


def planned_jobs(dry_run_output: str) -> list[str]:
    """Rule names of the jobs a dry run would execute."""
    return re.findall(r"^(?:local)?rule (\S+):$", dry_run_output, flags=re.MULTILINE)


def planned_outputs(dry_run_output: str) -> set[str]:
    outputs = re.findall(r"^\s+output: (.+)$", dry_run_output, flags=re.MULTILINE)
    return {path.strip() for line in outputs for path in line.split(",")}


# ---------------------------------------------------------------- the DAG


def test_dry_run_lists_every_synthetic_target(workflow_copy):
    result = run_snakemake("-n", "synthetic", cwd=workflow_copy)
    assert result.returncode == 0, output_of(result)
    assert planned_outputs(result.stdout) == SYNTHETIC_TARGETS
    jobs = planned_jobs(result.stdout)
    assert sorted(jobs) == sorted([f"synthetic_{f}" for f in SYNTHETIC_FIGURES] + ["table6", "synthetic"])

    everything = run_snakemake("-n", cwd=workflow_copy)  # rule all, the default target
    assert everything.returncode == 0, output_of(everything)
    # the synthetic figures only: no table 6 (hardware timings), no pretraining
    assert planned_outputs(everything.stdout) == SYNTHETIC_TARGETS - {"tables/table6.csv", "tables/table6.md"}


def test_every_figure_has_an_experiment_and_a_caption():
    from lejepa.synthetic import FIGURE_MODULES

    assert sorted(FIGURE_MODULES) == sorted(SYNTHETIC_FIGURES)
    for name in SYNTHETIC_FIGURES + ["table6"]:
        caption = (REPO / "workflow" / "report" / f"{name}.rst").read_text()
        assert "claim" in caption and "What our run shows:" in caption, name


def test_lint_is_clean(workflow_copy):
    result = run_snakemake("--lint", cwd=workflow_copy)
    assert result.returncode == 0, output_of(result)
    assert "Lints for" not in output_of(result)


def test_rule_files_are_snakefmt_formatted():
    snakefmt = shutil.which("snakefmt")
    if snakefmt is None:
        pytest.skip("snakefmt is not installed (pip install -e '.[test]')")
    rule_files = ["Snakefile", *sorted(str(p.relative_to(REPO)) for p in (REPO / "workflow" / "rules").glob("*.smk"))]
    result = subprocess.run([snakefmt, "--check", *rule_files], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- config validation


def validation_error(config_overrides: dict) -> str:
    """The schema's complaint about config/config.yaml updated by ``config_overrides`` ('' if valid)."""
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for section, value in config_overrides.items():
        if isinstance(value, dict) and isinstance(config.get(section), dict):
            config[section] = {**config[section], **value}
        else:
            config[section] = value
    try:
        validate(config, schema=str(SCHEMA))
    except Exception as error:  # WorkflowError wrapping jsonschema's ValidationError
        return str(error) + " " + " ".join(str(arg) for arg in getattr(error, "args", ()))
    return ""


def test_shipped_config_is_valid_and_defaults_fill_missing_sections():
    from snakemake.utils import validate

    assert validation_error({}) == ""
    config = {"table6": {"grid": [{"n": 8, "m": 2, "knots": 4, "d": 3}]}}
    validate(config, schema=str(SCHEMA))
    assert config["synthetic"]["fig6"] == {}
    assert config["table6"]["repeats"] == 10 and config["table6"]["device"] == "auto"
    assert config["resources"]["synthetic"] == {"threads": 1, "mem_mb": 2000, "runtime": 30}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"synthetc": {}}, "'synthetc' was unexpected"),
        ({"synthetic": {"fig99": {}}}, "'fig99' was unexpected"),
        ({"table6": {"repeat": 3}}, "'repeat' was unexpected"),
        ({"table6": {"grid": [{"n": -5, "m": 4, "knots": 8, "d": 4}]}}, "-5 is less than the minimum"),
        ({"table6": {"grid": [{"n": 64, "m": 4, "knots": 8}]}}, "'d' is a required property"),
        ({"table6": {"device": "tpu"}}, "'tpu' is not one of"),
        ({"resources": {"synthetic": {"threads": 0, "mem_mb": 10, "runtime": 1}}}, "0 is less than the minimum of 1"),
        ({"resources": {"synthetic": {"mem": 10}}}, "'mem' was unexpected"),
        ({"synthetic": {"fig6": {"dim": -1}}}, "-1 is less than the minimum of 2"),
        ({"synthetic": {"fig20": {"knots": [17, 1]}}}, "1 is less than the minimum of 2"),
        ({"synthetic": {"fig16": {"cases": [{"dim": 128}]}}}, "'num_directions' is a required property"),
    ],
)
def test_schema_rejects_wrong_key_or_value(overrides, message):
    assert message in validation_error(overrides)


def test_broken_config_stops_snakemake_with_a_message_naming_it(workflow_copy):
    broken = write_yaml({"table6": {"grid": [{"n": -5, "m": 4, "knots": 8, "d": 4}]}}, workflow_copy / "broken.yaml")
    result = run_snakemake("-n", "--configfile", str(broken), cwd=workflow_copy)
    assert result.returncode != 0
    message = [line for line in output_of(result).splitlines() if "is extended by" not in line]
    assert "config error at 'table6.grid.0.n': -5 is less than the minimum of 2" in message[0]
    assert message[-1] == f"  set in: {broken}"
    assert len(message) <= 4  # not the schema (hundreds of lines)


def describe(config_overrides: dict, tmp_path: Path) -> str:
    """describe_config_error's lines for config/config.yaml with ``config_overrides`` laid over it."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    from lejepa.config_errors import describe_config_error

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(config_overrides)
    override_file = write_yaml(config_overrides, tmp_path / "override.yaml")
    with pytest.raises(WorkflowError) as error:
        validate(config, schema=str(SCHEMA))
    return describe_config_error(error.value, [REPO / "config" / "config.yaml", override_file])


def test_config_error_names_key_allowed_keys_nearest_and_file(tmp_path):
    lines = describe({"scael": "tiny"}, tmp_path).splitlines()
    assert lines[0] == "config error: unknown key 'scael' (did you mean 'scale'?)"
    assert lines[1].startswith("  allowed under (top level): data, pretrain, probe, resources, retries, scale,")
    assert lines[2] == f"  set in: {tmp_path / 'override.yaml'}"


def test_config_error_for_a_value_names_allowed_values_and_only_the_file_that_set_it(tmp_path):
    lines = describe({"scale": "smal"}, tmp_path).splitlines()
    assert lines[0] == "config error at 'scale': 'smal' is not one of ['tiny', 'small', 'paper']"
    assert lines[1] == "  allowed values: tiny, small, paper (did you mean 'small'?)"
    assert lines[-1] == f"  set in: {tmp_path / 'override.yaml'}"  # not config/config.yaml, whose value is valid


# ---------------------------------------------------------------- rerun scope and failures


def test_editing_one_figure_reruns_only_that_figure(workflow_copy):
    (workflow_copy / "workflow" / "scripts" / "synthetic_figure.py").write_text(STUB_SCRIPT)
    targets = ["figures/fig2.pdf", "figures/fig5.pdf", "figures/fig20.pdf"]
    before = write_yaml({"synthetic": {"fig20": {"repeats": 1}}}, workflow_copy / "before.yaml")
    after = write_yaml({"synthetic": {"fig20": {"repeats": 2}}}, workflow_copy / "after.yaml")

    build = run_snakemake("--cores", "1", *targets, "--configfile", str(before), cwd=workflow_copy)
    assert build.returncode == 0, output_of(build)

    unchanged = run_snakemake(
        "-n", *targets, "--rerun-triggers", "params", "--configfile", str(before), cwd=workflow_copy
    )
    assert planned_jobs(unchanged.stdout) == [], unchanged.stdout

    edited = run_snakemake("-n", *targets, "--rerun-triggers", "params", "--configfile", str(after), cwd=workflow_copy)
    assert edited.returncode == 0, output_of(edited)
    assert planned_jobs(edited.stdout) == ["synthetic_fig20"], edited.stdout
    assert "Params have changed" in edited.stdout


def test_execution_settings_never_plan_a_finished_run_again(workflow_copy):
    """A finished pretrain run (stub outputs) stays finished when its device, workers or progress bar
    change; a training setting (lr) plans it again."""
    from lejepa.data import DATASETS

    (workflow_copy / "workflow" / "scripts" / "pretrain.py").write_text(STUB_SCRIPT)
    data = workflow_copy / "data" / "cifar10"
    data.mkdir(parents=True)
    for name in ["meta.json", *(f"{split}.npz" for split in DATASETS["cifar10"].splits)]:
        (data / name).write_text("prepared\n")
    target = "runs/cifar10_resnet18_tiny/final.pt"
    build = run_snakemake("--cores", "1", target, cwd=workflow_copy)
    assert build.returncode == 0, output_of(build)

    def planned_with(settings: dict, name: str) -> list[str]:
        override = write_yaml({"pretrain": {"scales": {"tiny": {"settings": settings}}}}, workflow_copy / name)
        dry_run = run_snakemake("-n", target, "--rerun-triggers", "params", "--configfile", str(override),
                                cwd=workflow_copy)  # fmt: skip
        assert dry_run.returncode == 0, output_of(dry_run)
        return planned_jobs(dry_run.stdout)

    execution = {"device": "cuda", "workers": 3, "progress": False, "checkpoint_minutes": 1.0, "compile": True}
    assert planned_with(execution, "execution.yaml") == []
    assert planned_with({"lr": 0.01}, "training.yaml") == ["pretrain"]


def test_failing_rule_leaves_no_partial_output(workflow_copy):
    (workflow_copy / "workflow" / "scripts" / "synthetic_figure.py").write_text(FAILING_SCRIPT)
    result = run_snakemake("--cores", "1", "figures/fig20.pdf", cwd=workflow_copy)
    assert result.returncode != 0
    assert "drawing failed on purpose" in output_of(result)
    leftovers = [p for p in (workflow_copy / "figures").rglob("*") if p.is_file()]
    assert leftovers == []


@pytest.mark.slow
def test_fig20_rule_end_to_end_with_report(workflow_copy):
    """The real script on fig20 at a tiny size: CSV, PDF, PNG, log, benchmark, report."""
    settings = {"distributions": ["gaussian"], "knots": [5, 17], "repeats": 2, "num_samples": 64}
    tiny = write_yaml({"synthetic": {"fig20": settings}}, workflow_copy / "tiny.yaml")
    result = run_snakemake("--cores", "1", "figures/fig20.pdf", "--configfile", str(tiny), cwd=workflow_copy)
    assert result.returncode == 0, output_of(result) + (workflow_copy / "logs/synthetic/fig20.log").read_text()

    # The CSV holds exactly what the experiment computes for these settings (seeds fixed).
    from lejepa.synthetic import experiment

    compute, _ = experiment("fig20")
    data = pd.read_csv(workflow_copy / "figures/data/fig20.csv")
    pd.testing.assert_frame_equal(data, compute(**settings), check_dtype=False, rtol=1e-12)
    assert set(data["knots"]) == {5, 17}
    assert (workflow_copy / "figures/fig20.pdf").read_bytes().startswith(b"%PDF")
    assert (workflow_copy / "figures/fig20.png").read_bytes().startswith(b"\x89PNG")
    assert "fig20" in (workflow_copy / "logs/synthetic/fig20.log").read_text()
    benchmark = pd.read_csv(workflow_copy / "benchmarks/synthetic/fig20.tsv", sep="\t")
    assert benchmark["s"].iloc[0] > 0

    report = run_snakemake("--report", "report.html", "figures/fig20.pdf", "--configfile", str(tiny), cwd=workflow_copy)
    assert report.returncode == 0, output_of(report)
    html = (workflow_copy / "report.html").read_text()
    assert "fig20.png" in html
    assert "error falls faster than quadratically" in html  # the caption
    assert "'num_samples': 64" in html  # the settings rendered into it


def test_unknown_figure_setting_stops_the_dry_run(workflow_copy):
    typo = write_yaml({"synthetic": {"fig20": {"num_sample": 64}}}, workflow_copy / "typo.yaml")
    result = run_snakemake("-n", "figures/fig20.pdf", "--configfile", str(typo), cwd=workflow_copy)
    assert result.returncode != 0
    assert "unknown key 'synthetic.fig20.num_sample' (did you mean 'num_samples'?)" in output_of(result)


@pytest.mark.slow
def test_script_rejects_a_setting_the_compute_function_does_not_take(workflow_copy):
    """The script's own check, for a figure whose schema block is still open."""
    schema_path = workflow_copy / "workflow" / "schemas" / "config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    schema["properties"]["synthetic"]["properties"]["fig20"] = {"type": "object", "default": {}}
    schema_path.write_text(yaml.safe_dump(schema))
    typo = write_yaml({"synthetic": {"fig20": {"num_sample": 64}}}, workflow_copy / "typo.yaml")
    result = run_snakemake("--cores", "1", "figures/fig20.pdf", "--configfile", str(typo), cwd=workflow_copy)
    assert result.returncode != 0
    log = (workflow_copy / "logs/synthetic/fig20.log").read_text()
    assert "synthetic.fig20: unknown setting(s) ['num_sample']" in log
    assert not (workflow_copy / "figures/fig20.pdf").exists()


@pytest.mark.parametrize("figure", SYNTHETIC_FIGURES)
def test_figure_schema_lists_exactly_the_compute_arguments(figure):
    import inspect

    from lejepa.synthetic import experiment

    compute, _ = experiment(figure)
    arguments = set(inspect.signature(compute).parameters)
    block = yaml.safe_load(SCHEMA.read_text())["properties"]["synthetic"]["properties"][figure]
    listed = set(block.get("properties", {}))
    assert block.get("additionalProperties") is False, (
        f"synthetic.{figure} in {SCHEMA} accepts any key; list {sorted(arguments)}"
    )
    assert listed == arguments, (
        f"{SCHEMA} synthetic.{figure}: missing {sorted(arguments - listed)}, extra {sorted(listed - arguments)}"
    )


# ---------------------------------------------------------------- table 6


def paper_table6_from_targets(require_shared) -> dict:
    """(N, M, knots) -> (mean, std) as printed in ../shared/paper/TARGETS.md."""
    targets = require_shared("paper/TARGETS.md", "the paper's table 6 numbers, transcribed there")
    row = r"^\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|"
    rows = re.findall(row, targets.read_text(), re.M)
    return {(int(n), int(m), int(k)): (float(mean), float(std)) for n, m, k, mean, std in rows}


def test_paper_table6_numbers_match_the_paper(require_shared):
    printed = paper_table6_from_targets(require_shared)
    assert len(printed) == 9
    assert set(tables.PAPER_TABLE6) == set(printed)
    for key, (mean, std) in printed.items():
        assert tables.PAPER_TABLE6[key][0] == pytest.approx(mean, abs=5e-4)
        assert tables.PAPER_TABLE6[key][1] == pytest.approx(std, abs=5e-4)


def test_default_grid_is_the_papers_grid(require_shared):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    grid = {(row["n"], row["m"], row["knots"]) for row in config["table6"]["grid"]}
    assert grid == set(paper_table6_from_targets(require_shared))


def git(*args, cwd):
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_git_commit_clean_dirty_and_outside_git(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    outside = tmp_path / "outside"
    outside.mkdir()
    assert tables.git_commit(outside) == "unknown"

    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    (repo / "tracked.txt").write_text("a\n")
    git("add", "tracked.txt", cwd=repo)
    git("commit", "-q", "-m", "first", cwd=repo)
    head = git("rev-parse", "--short", "HEAD", cwd=repo)
    (repo / "untracked.txt").write_text("outputs do not make the tree dirty\n")
    assert tables.git_commit(repo) == head
    (repo / "tables").mkdir()
    (repo / "tables" / "table2.csv").write_text("x\n")
    git("add", "tables", cwd=repo)
    git("commit", "-q", "-m", "a generated table", cwd=repo)
    head = git("rev-parse", "--short", "HEAD", cwd=repo)
    (repo / "tables" / "table2.csv").unlink()  # a rule rebuilding its output is not a code change
    assert tables.git_commit(repo) == head
    (repo / "tracked.txt").write_text("b\n")
    assert tables.git_commit(repo) == head + "-dirty"


def test_table6_frame_and_markdown():
    measurements = [
        {"n": 512, "m": 512, "knots": 16, "d": 512, "mean_ms": 1.5, "std_ms": 0.25, "peak_mem_mb": 3.0},
        {"n": 64, "m": 8, "knots": 4, "d": 16, "mean_ms": 0.5, "std_ms": 0.125, "peak_mem_mb": 0.1},
    ]
    frame = tables.table6_frame(
        measurements, device="cpu: test, 2 threads", impl="ours", repeats=10, commit="abc1234", torch_version="2.x"
    )
    assert list(frame.columns[:6]) == ["N", "M", "knots", "D", "mean_ms", "std_ms"]
    assert {"peak_mem_mb", "device", "paper_mean_ms", "paper_std_ms", "paper_device", "commit", "torch_version"} <= set(
        frame.columns
    )
    assert frame.loc[0, "paper_mean_ms"] == pytest.approx(0.465236)
    assert math.isnan(frame.loc[1, "paper_mean_ms"])  # not a row of the paper
    assert (frame["paper_device"] == "Tesla V100-SXM2-16GB").all()

    markdown = tables.table6_markdown(frame)
    assert "cpu: test, 2 threads" in markdown and "V100" in markdown and "abc1234" in markdown
    table_rows = [line for line in markdown.splitlines() if line.startswith("| 512")]
    assert table_rows == ["| 512 | 512 | 16 | 512 | 1.500 | 0.250 | 3.0 | 0.465 | 0.012 | 3.22 |"]

    with pytest.raises(ValueError, match="mean_ms"):
        tables.table6_frame(
            [{"n": 1, "m": 1, "knots": 1, "d": 1}], device="cpu", impl="ours", repeats=2, commit="x", torch_version="x"
        )


@pytest.mark.slow
def test_table6_rule_end_to_end(workflow_copy):
    pytest.importorskip("lejepa.timing")
    grid = [{"n": 512, "m": 512, "knots": 16, "d": 512}, {"n": 64, "m": 16, "knots": 8, "d": 32}]
    tiny = write_yaml(
        {"table6": {"repeats": 2, "warmup": 1, "device": "cpu", "grid": grid}, "resources": {"table6": {"threads": 1}}},
        workflow_copy / "tiny.yaml",
    )
    result = run_snakemake("--cores", "1", "tables/table6.md", "--configfile", str(tiny), cwd=workflow_copy)
    assert result.returncode == 0, output_of(result)

    table = pd.read_csv(workflow_copy / "tables/table6.csv")
    assert table[["N", "M", "knots", "D"]].values.tolist() == [[512, 512, 16, 512], [64, 16, 8, 32]]
    assert (table["mean_ms"] > 0).all() and (table["std_ms"] >= 0).all()
    assert table["repeats"].tolist() == [2, 2]
    assert table.loc[0, "paper_mean_ms"] == pytest.approx(0.465236) and math.isnan(table.loc[1, "paper_mean_ms"])
    assert table["device"].str.startswith("cpu: ").all()
    assert (table["commit"] == "unknown").all()  # the copy is not a git checkout
    markdown = (workflow_copy / "tables/table6.md").read_text()
    assert "Tesla V100-SXM2-16GB" in markdown and "cpu: " in markdown
