"""Faults across the DAG, stage by stage: a job killed mid-run, a truncated or corrupted
intermediate file, a non-finite loss, a missing dataset, an unreachable download, a disk that
fills up while writing, two Snakemake invocations at once.

Each fault ends in one of two outcomes, checked against real bytes and messages:
- "same result": rerunning the target gives what an uninterrupted run gives (weights,
  features, few-shot subsets, probe results and the table, compared value by value);
- "clear error, nothing lost": the error names the file, key or value, says what happened and
  what to do, and no half-written file is left behind (nor is any earlier good file touched).

FAULTS below is the fault table; README.md's "Reliability" section prints it, and
test_readme_reliability_table_is_the_suites checks that the two agree and that every test it
names exists. `python tests/test_faults.py` prints the table.

Processes started here import tests/fault_site/sitecustomize.py, which kills or pauses a
process just before it writes a given file (see its docstring): deterministic, no timing.
"""

from __future__ import annotations

import builtins
import dataclasses
import errno
import fnmatch
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import copy_workflow, tiny_train_config, write_tiny_dataset

from lejepa import train
from lejepa.data import DATASETS, DatasetError, EncodedImages, prepare
from lejepa.loss import LeJEPALoss

REPO = Path(__file__).resolve().parents[1]
FAULT_SITE = Path(__file__).resolve().parent / "fault_site"

SAME = "same result"
CLEAR = "clear error, nothing lost"

# The fault table: (stage, fault, outcome, the tests that check it). A test is a name in this
# file or "<file>::<name>" in another test file.
FAULTS = [
    ("prepare", "killed while publishing, then rerun", SAME, ["test_prepare_killed_then_rerun_gives_the_same_files"]),
    ("prepare", "truncated split file (.npz)", CLEAR, ["test_truncated_prepared_split_names_the_file_and_the_remedy"]),
    (
        "prepare",
        "dataset missing from the mirror",
        CLEAR,
        [
            "test_data.py::test_missing_mirror_dataset_says_what_to_download_and_where",
            "test_pretrain_without_its_prepared_dataset_says_how_to_prepare_it",
        ],
    ),
    (
        "prepare",
        "download unreachable or cut short",
        CLEAR,
        [
            "test_data.py::test_failed_download_says_what_to_download_and_where",
            "test_download_cut_short_leaves_no_partial_file",
        ],
    ),
    (
        "prepare",
        "disk full while writing",
        CLEAR,
        ["test_disk_full_while_writing_leaves_nothing_half_written[prepare]"],
    ),
    (
        "pretrain",
        "killed mid-epoch, then rerun",
        SAME,
        [
            "test_dag_killed_at_every_stage_then_rerun_gives_the_same_table",
            "test_train.py::test_kill_9_mid_epoch_then_resume_is_bit_identical",
        ],
    ),
    ("pretrain", "truncated checkpoint.pt", CLEAR, ["test_truncated_checkpoint_names_the_file_and_the_remedy"]),
    (
        "pretrain",
        "non-finite loss at the first step",
        CLEAR,
        ["test_non_finite_loss_at_the_first_step_says_nothing_is_kept"],
    ),
    (
        "pretrain",
        "non-finite loss at a later step",
        CLEAR,
        ["test_non_finite_loss_at_a_later_step_keeps_the_last_good_checkpoint"],
    ),
    (
        "pretrain",
        "disk full while writing checkpoint.pt",
        CLEAR,
        ["test_disk_full_while_writing_leaves_nothing_half_written[pretrain]"],
    ),
    (
        "pretrain",
        "two Snakemake invocations at once",
        CLEAR,
        ["test_two_snakemake_invocations_at_once_the_lock_says_so"],
    ),
    (
        "extract_features",
        "killed while writing, then rerun",
        SAME,
        ["test_dag_killed_at_every_stage_then_rerun_gives_the_same_table"],
    ),
    (
        "extract_features",
        "truncated feature cache (.pt)",
        CLEAR,
        ["test_truncated_feature_cache_names_the_file_or_is_extracted_again"],
    ),
    (
        "extract_features",
        "frontier weights unreachable",
        CLEAR,
        ["test_probe.py::test_frontier_without_network_says_weights_unreachable"],
    ),
    (
        "extract_features",
        "disk full while writing",
        CLEAR,
        ["test_disk_full_while_writing_leaves_nothing_half_written[features]"],
    ),
    (
        "few_shot_indices",
        "killed while writing, then rerun",
        SAME,
        ["test_dag_killed_at_every_stage_then_rerun_gives_the_same_table"],
    ),
    (
        "few_shot_indices",
        "truncated few-shot file (.npz)",
        CLEAR,
        ["test_truncated_few_shot_file_names_the_file_and_the_remedy"],
    ),
    (
        "few_shot_indices",
        "disk full while writing",
        CLEAR,
        ["test_disk_full_while_writing_leaves_nothing_half_written[few_shot]"],
    ),
    (
        "probe",
        "killed while writing, then rerun",
        SAME,
        ["test_dag_killed_at_every_stage_then_rerun_gives_the_same_table"],
    ),
    (
        "probe",
        "truncated or wrong results JSON",
        CLEAR,
        [
            "test_dag_corrupted_result_stops_the_table_until_it_is_recomputed",
            "test_wrong_results_json_never_becomes_a_number",
        ],
    ),
    ("probe", "disk full while writing", CLEAR, ["test_disk_full_while_writing_leaves_nothing_half_written[probe]"]),
    (
        "table assembly",
        "killed while writing, then rerun",
        SAME,
        ["test_dag_killed_at_every_stage_then_rerun_gives_the_same_table"],
    ),
    (
        "table assembly",
        "truncated metrics.csv of a run",
        CLEAR,
        ["test_truncated_metrics_names_the_file_and_the_remedy"],
    ),
    (
        "table assembly",
        "disk full while writing",
        CLEAR,
        ["test_disk_full_while_writing_leaves_nothing_half_written[table]"],
    ),
    ("report", "killed while writing, then rerun", SAME, ["test_report_killed_then_rerun_gives_a_complete_report"]),
]


def fault_table_markdown() -> str:
    """FAULTS as the markdown table of README.md's Reliability section."""
    lines = ["| stage | fault | outcome | checked by (tests/) |", "|---|---|---|---|"]
    for stage, fault, outcome, tests in FAULTS:
        named = ", ".join(f"`{t}`" if "::" in t else f"`test_faults.py::{t}`" for t in tests)
        lines.append(f"| {stage} | {fault} | {outcome} | {named} |")
    return "\n".join(lines)


def subprocess_env(**extra) -> dict:
    path = os.pathsep.join([str(FAULT_SITE), str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": path, **extra}  # fmt: skip


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files or staging folders anywhere under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*") if ".tmp" in p.name or ".staging-" in p.name)


# ---------------------------------------------------------------- a disk that fills up


class FillingFile:
    """A file object that takes ``room`` more bytes (or characters), then raises ENOSPC."""

    def __init__(self, file, room: int, name):
        self._file, self._room, self._name = file, room, os.fspath(name)

    def write(self, data):
        if len(data) > self._room:
            self._file.write(data[: self._room])
            self._file.flush()
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._name)
        self._room -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __iter__(self):
        return iter(self._file)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


@pytest.fixture
def full_disk(monkeypatch):
    """full_disk("<fnmatch pattern on the file name>"): writes to matching files fail with
    ENOSPC after 10 bytes (open, pathlib, numpy, pandas, zipfile and torch.save all)."""

    def install(pattern: str, room: int = 10):
        real_open, real_save = builtins.open, torch.save

        def matches(file) -> bool:
            return isinstance(file, (str, os.PathLike)) and fnmatch.fnmatch(Path(file).name, pattern)

        def filling_open(file, mode="r", *args, **kwargs):
            handle = real_open(file, mode, *args, **kwargs)
            if matches(file) and any(m in mode for m in "wax+"):
                return FillingFile(handle, room, file)
            return handle

        def filling_save(obj, f, *args, **kwargs):
            if not matches(f):
                return real_save(obj, f, *args, **kwargs)
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            with filling_open(f, "wb") as out:
                out.write(buffer.getvalue())

        monkeypatch.setattr(builtins, "open", filling_open)
        monkeypatch.setattr(io, "open", filling_open)
        monkeypatch.setattr(torch, "save", filling_save)

    return install


# ---------------------------------------------------------------- prepare


@pytest.fixture
def tiny_mirror(tmp_path, monkeypatch):
    """A mirror holding a tiny 'dtd' (10 classes, 96 train / 32 test images); dtd10 sized to match."""
    mirror = tmp_path / "mirror"
    write_tiny_dataset(mirror / "dtd", classes=10)
    monkeypatch.setitem(DATASETS, "dtd10", dataclasses.replace(DATASETS["dtd10"], sizes={"train": 96, "test": 32}))
    return mirror


PREPARE_DRIVER = """
import dataclasses, sys
from lejepa.data import DATASETS, prepare
DATASETS["dtd10"] = dataclasses.replace(DATASETS["dtd10"], sizes={"train": 96, "test": 32})
prepare("dtd10", out_dir=sys.argv[1], mirror_dir=sys.argv[2])
"""


def test_prepare_killed_then_rerun_gives_the_same_files(tiny_mirror, tmp_path):
    reference = prepare("dtd10", out_dir=tmp_path / "reference", mirror_dir=tiny_mirror)
    out = tmp_path / "data"
    # killed between moving train.npz and test.npz into place (meta.json, the completion mark, comes last)
    env = subprocess_env(LEJEPA_FAULT_KILL="*/dtd10/test.npz")
    command = [sys.executable, "-c", PREPARE_DRIVER, str(out), str(tiny_mirror)]
    killed = subprocess.run(command, env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "dtd10" / "meta.json").exists()  # not marked prepared: Snakemake and readers see it missing
    with pytest.raises(DatasetError, match=re.escape(f"{out / 'dtd10' / 'meta.json'}: missing; prepare the dataset")):
        EncodedImages(out / "dtd10", "train")
    assert leftovers(out)  # the killed process's staging folder

    prepare("dtd10", out_dir=out, mirror_dir=tiny_mirror)
    for name in ("train.npz", "test.npz", "meta.json"):
        expected = (reference / name).read_bytes()
        if name == "meta.json":  # the same except the folder it was prepared into
            expected = expected.replace(str(reference.parent).encode(), str(out).encode())
        assert (out / "dtd10" / name).read_bytes() == expected, name
    assert leftovers(out) == []  # the rerun removed what the killed one left


def test_truncated_prepared_split_names_the_file_and_the_remedy(tiny_mirror, tmp_path):
    root = prepare("dtd10", out_dir=tmp_path / "data", mirror_dir=tiny_mirror)
    split = root / "train.npz"
    split.write_bytes(split.read_bytes()[: split.stat().st_size // 2])
    with pytest.raises(DatasetError) as raised:
        EncodedImages(root, "train")  # what pretraining and feature extraction read
    message = str(raised.value)
    assert message.startswith(f"{split}: cannot be read, truncated or corrupted?")
    assert f"delete {root} and prepare it again (snakemake prepare_dtd10" in message


def test_pretrain_without_its_prepared_dataset_says_how_to_prepare_it(tmp_path):
    config = tiny_config(tmp_path / "data" / "dtd10", tmp_path / "run")
    with pytest.raises(DatasetError) as raised:
        train.main(config)
    assert (
        str(raised.value)
        == f"{tmp_path / 'data' / 'dtd10' / 'meta.json'}: missing; prepare the dataset first (snakemake prepare_<name>)"
    )
    assert not (tmp_path / "run").exists()


def test_download_cut_short_leaves_no_partial_file(tmp_path, monkeypatch):
    from lejepa.data import sources

    class Dropped(io.BytesIO):
        def read(self, *args):
            if self.tell() >= 1000:
                raise ConnectionResetError(104, "Connection reset by peer")
            return super().read(*args)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Dropped(b"x" * 5000))
    target = tmp_path / "downloads" / "archive.tar"
    with pytest.raises(ConnectionResetError):
        sources._download("https://example.org/archive.tar", target)
    assert list((tmp_path / "downloads").iterdir()) == []  # neither the archive nor archive.tar.part


# ---------------------------------------------------------------- pretrain


def tiny_config(data_dir, out_dir, **overrides):
    """conftest's tiny run cut to 3 steps per epoch (2 epochs) and checkpointed after every step,
    so that faults can hit a given step."""
    faults = dict(max_steps_per_epoch=3, checkpoint_every_steps=1)
    return tiny_train_config(data_dir, out_dir, **{**faults, **overrides})


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny", classes=4)


@pytest.fixture(scope="module")
def reference_run(tiny_data, tmp_path_factory):
    """final.pt of the uninterrupted tiny run (2 epochs x 3 steps)."""
    return train.main(tiny_config(tiny_data, tmp_path_factory.mktemp("reference") / "run"))


def load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def assert_same_weights(a, b):
    a, b = load(a), load(b)
    for part in ("encoder", "probe"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key}"


def test_truncated_checkpoint_names_the_file_and_the_remedy(tiny_data, reference_run, tmp_path):
    out = tmp_path / "run"
    config = tiny_config(tiny_data, out)
    train.main({**config, "epochs": 1})  # a checkpoint of epoch 1 ...
    (out / "final.pt").unlink()
    checkpoint = out / "checkpoint.pt"
    truncated = checkpoint.read_bytes()[: checkpoint.stat().st_size // 2]  # ... cut in half (a copy cut short)
    checkpoint.write_bytes(truncated)
    with pytest.raises(train.CheckpointUnreadable) as raised:
        train.main(config)
    message = str(raised.value)
    assert message.startswith(
        f"cannot resume from {checkpoint} ({len(truncated)} bytes): RuntimeError: PytorchStreamReader"
    )
    assert f"move it aside (mv {checkpoint} {checkpoint}.corrupt) and rerun" in message
    assert f"if you kept a copy of an earlier checkpoint of this run, put that copy at {checkpoint}" in message
    assert checkpoint.read_bytes() == truncated and not (out / "final.pt").exists()  # nothing touched

    command = [sys.executable, "-m", "lejepa.train", "--config", str(write_yaml(config, tmp_path / "c.yaml"))]
    result = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stderr.strip() == f"error: {message}"  # one line, no traceback

    os.replace(checkpoint, f"{checkpoint}.corrupt")  # the remedy: set it aside, start again
    assert_same_weights(train.main(config), reference_run)


def write_yaml(data, path: Path) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def nan_at_step(monkeypatch):
    """nan_at_step(k): the LeJEPA loss is NaN at global step k (a diverging run, on demand)."""

    def install(bad_step: int):
        forward = LeJEPALoss.forward

        def diverging(self, global_z, all_z, *, step):
            out = forward(self, global_z, all_z, step=step)
            return {**out, "loss": out["loss"] * float("nan")} if step == bad_step else out

        monkeypatch.setattr(LeJEPALoss, "forward", diverging)

    return install


def test_non_finite_loss_at_the_first_step_says_nothing_is_kept(tiny_data, tmp_path, nan_at_step):
    nan_at_step(0)
    out = tmp_path / "runs" / "tiny"
    with pytest.raises(train.NonFiniteLoss) as raised:
        train.main(tiny_config(tiny_data, out))
    message = str(raised.value)
    assert message.startswith("run 'tiny': non-finite loss at step 0 (epoch 1, batch 0): loss=nan, prediction=")
    assert f"No checkpoint was written before this step ({out / 'checkpoint.pt'} does not exist)" in message
    assert "lower lr (or check the data), then rerun; the run starts from step 0" in message
    assert "kept" not in message
    assert not (out / "checkpoint.pt").exists() and not (out / "final.pt").exists()


def test_non_finite_loss_at_a_later_step_keeps_the_last_good_checkpoint(tiny_data, tmp_path, nan_at_step, monkeypatch):
    nan_at_step(4)  # epoch 2, batch 1: checkpoints were written after steps 1, 2, 3 (end of epoch 1) and 4
    out = tmp_path / "run"
    config = tiny_config(tiny_data, out)
    with pytest.raises(train.NonFiniteLoss) as raised:
        train.main(config)
    message = str(raised.value)
    checkpoint = out / "checkpoint.pt"
    assert message.startswith("run 'tiny': non-finite loss at step 4 (epoch 2, batch 1): loss=nan")
    assert f"The last good checkpoint is kept: {checkpoint}." in message
    kept = load(checkpoint)
    assert (kept["step"], kept["epoch"], kept["batch_in_epoch"]) == (4, 1, 1)
    assert all(torch.isfinite(v).all() for v in kept["encoder"].values() if v.is_floating_point())
    # what the message says: the same settings meet the same loss again ...
    with pytest.raises(train.NonFiniteLoss, match="non-finite loss at step 4 "):
        train.main(config)
    # ... and a changed training setting starts afresh, the old checkpoint set aside
    monkeypatch.undo()
    train.main({**config, "lr": 5e-4})
    assert load(out / "checkpoint.stale.pt")["step"] == 4 and load(out / "final.pt")["config"]["lr"] == 5e-4


# ---------------------------------------------------------------- intermediate files of the probes


def test_truncated_feature_cache_names_the_file_or_is_extracted_again(tiny_data, tmp_path):
    from lejepa.features import cached_features, load_features
    from lejepa.models import encoder_from_config
    from lejepa.views import eval_transform

    torch.manual_seed(0)
    backbone = encoder_from_config(tiny_config(tiny_data, tmp_path)).backbone
    images = EncodedImages(tiny_data, "test", transform=eval_transform(16))
    path = tmp_path / "features" / "tiny" / "test.pt"
    kwargs = dict(model=backbone, dataset=images, key={"split": "test"}, progress=False, device="cpu")
    reference = cached_features(path, **kwargs)["features"]
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError) as raised:
        load_features(path)  # what the probe rule reads
    assert str(raised.value).startswith(f"cannot read feature file {path} (RuntimeError: PytorchStreamReader")
    assert str(raised.value).endswith("truncated or corrupted? Delete it and rerun; the extract_features rule "
                                      "(lejepa.features.cached_features) extracts it again")  # fmt: skip
    assert torch.equal(cached_features(path, **kwargs)["features"], reference)  # the cache itself recomputes
    assert torch.equal(load_features(path)["features"], reference)


def test_truncated_few_shot_file_names_the_file_and_the_remedy(tiny_data, tmp_path):
    from lejepa.probe import read_few_shot_file, write_few_shot_file

    path = tmp_path / "fewshot" / "2shot.npz"
    write_few_shot_file(tiny_data / "train.npz", path, shots=2, seeds=[0, 1])
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError) as raised:
        read_few_shot_file(path, seed=0)
    assert str(raised.value).startswith(f"cannot read few-shot file {path} (BadZipFile:")
    assert str(raised.value).endswith("Delete it and rerun; the few_shot_indices rule draws the same subsets again")


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"status": "ok", "accuracy": 61.', "cannot read probe result {path} (JSONDecodeError:"),
        (
            '{"status": "ok", "std": 0.0}',
            "probe result {path}: status ok but accuracy = None, not a number in [0, 100]",
        ),
        (
            '{"status": "ok", "accuracy": NaN, "std": 0}',
            "probe result {path}: status ok but accuracy = nan, not a number",
        ),
        ('{"status": "ok", "accuracy": 6100.0, "std": 0}', "probe result {path}: status ok but accuracy = 6100.0, not"),
        ("[61.0]", "probe result {path} holds a list, not a result mapping"),
    ],
)
def test_wrong_results_json_never_becomes_a_number(tmp_path, text, message):
    from lejepa.tables import read_result

    path = tmp_path / "results" / "run" / "linear" / "dtd10.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ValueError) as raised:
        read_result(path)
    assert str(raised.value).startswith(message.format(path=path))
    assert "delete it and rerun; the probe rule computes it again" in str(raised.value).lower()


def test_truncated_metrics_names_the_file_and_the_remedy(tmp_path):
    from lejepa.tables import read_run_info

    run = tmp_path / "runs" / "toy"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(
        yaml.safe_dump({"backbone": "test_resnet", "dataset": "dtd10", "global_size": 16, "epochs": 3})
    )
    rows = "epoch,step,loss,wall_s\n1,2,0.9,1.5\n2,4,0.8,3.0\n3,6,0.7,4.5\n"
    (run / "metrics.csv").write_text(rows)
    assert read_run_info("toy", {"kind": "pretrained"}, runs_dir=tmp_path / "runs")["epochs"] == 3
    (run / "metrics.csv").write_text(rows[: rows.index("3,6")])  # the last epoch's line lost
    with pytest.raises(ValueError) as raised:
        read_run_info("toy", {"kind": "pretrained"}, runs_dir=tmp_path / "runs")
    assert str(raised.value) == (
        f"{run / 'metrics.csv'} lists epochs [1, 2], but the run trains 3 ({run / 'config.yaml'}); truncated or "
        f"corrupted? delete it and rerun: Snakemake reruns the pretrain job of toy, which resumes from "
        f"{run / 'checkpoint.pt'} and writes it again"
    )


# ---------------------------------------------------------------- a disk that fills up, every stage


def write_during_full_disk(stage: str, tmp_path: Path, tiny_data: Path, tiny_mirror: Path):
    """Write ``stage``'s output to tmp_path/out; returns (target path, the good file before the fault or None)."""
    out = tmp_path / "out"
    if stage == "prepare":
        prepare("dtd10", out_dir=out, mirror_dir=tiny_mirror)
    elif stage == "pretrain":
        train.main(tiny_config(tiny_data, out))
    elif stage == "features":
        from lejepa.features import cached_features
        from lejepa.models import encoder_from_config
        from lejepa.views import eval_transform

        backbone = encoder_from_config(tiny_config(tiny_data, out)).backbone
        images = EncodedImages(tiny_data, "test", transform=eval_transform(16))
        cached_features(out / "test.pt", model=backbone, dataset=images, key={}, progress=False, device="cpu")
    elif stage == "few_shot":
        from lejepa.probe import write_few_shot_file

        write_few_shot_file(tiny_data / "train.npz", out / "2shot.npz", shots=2, seeds=[0, 1])
    elif stage == "probe":
        from lejepa.io import write_text  # what workflow/scripts/probe.py writes its result with

        write_text(json.dumps({"status": "ok", "accuracy": 61.0, "std": 0.0}) + "\n", out / "dtd10.json")
    elif stage == "table":
        from lejepa.tables import write_real_table

        frame = pd.DataFrame([{"row": "ours", "probe": "linear", "column": "dtd", "accuracy": 61.0}])
        write_real_table(frame, {}, csv_path=out / "toy.csv", md_path=out / "toy.md")


DISK_FULL_CASES = {  # stage: (file name pattern that fills the disk, what must not exist afterwards)
    "prepare": ("test.npz", ["dtd10"]),
    "pretrain": ("*checkpoint.pt*", ["final.pt", "metrics.csv"]),
    "features": ("*test.pt*", ["test.pt"]),
    "few_shot": ("*2shot.npz*", ["2shot.npz"]),
    "probe": ("*dtd10.json*", ["dtd10.json"]),
    "table": ("*toy.csv*", ["toy.csv", "toy.md"]),
}


@pytest.mark.parametrize("stage", sorted(DISK_FULL_CASES))
def test_disk_full_while_writing_leaves_nothing_half_written(
    stage, tmp_path, tiny_data, tiny_mirror, full_disk, monkeypatch, request
):
    pattern, absent = DISK_FULL_CASES[stage]
    out = tmp_path / "out"
    if stage == "pretrain":  # the disk fills up at the third checkpoint: the second one is kept
        calls = []
        save = torch.save

        def third_fails(obj, f, *args, **kwargs):
            calls.append(f)
            if len(calls) == 3:
                full_disk(pattern)
                try:
                    return torch.save(obj, f, *args, **kwargs)
                finally:
                    monkeypatch.setattr(torch, "save", third_fails)
            return save(obj, f, *args, **kwargs)

        monkeypatch.setattr(torch, "save", third_fails)
    else:
        full_disk(pattern)
    with pytest.raises(OSError) as raised:
        write_during_full_disk(stage, tmp_path, tiny_data, tiny_mirror)
    assert raised.value.errno == errno.ENOSPC
    message = str(raised.value)
    assert "No space left on device while writing " in message and "nothing was written there" in message
    assert message.endswith("free space on that disk and rerun")
    assert leftovers(tmp_path) == [] if stage != "prepare" else leftovers(out) == []
    for name in absent:
        assert not (out / name).exists(), name
    if stage == "pretrain":
        assert str(out / "checkpoint.pt") in message
        assert load(out / "checkpoint.pt")["step"] == 2  # the last good checkpoint is intact
        monkeypatch.undo()
        train.main(tiny_config(tiny_data, out))  # space freed: the rerun resumes and finishes
        assert_same_weights(out / "final.pt", request.getfixturevalue("reference_run"))  # = uninterrupted


# ---------------------------------------------------------------- through Snakemake: a tiny DAG


TOY_TABLE = {
    "title": "toy table",
    "claim": "LeJEPA above a random init",
    "columns": {"dtd": "DTD"},
    "probes": ["knn_2shot", "linear"],
    "rows": {"ours": {"label": "LeJEPA (toy)", "paper": {"linear": [70.0], "knn_2shot": [30.0]}}},
    "scales": {"tiny": {"datasets": {"dtd": "dtd10"}, "runs": {"ours": "toy"}}},
}  # fmt: skip
DAG_CONFIG = {
    "scale": "tiny",
    "retries": 0,  # a failed job is not restarted by Snakemake: the tests rerun it as a user would
    "data": {"root": "data"},
    "resources": {"probe": {"threads": 1, "mem_mb": 1000, "runtime": 5}},
    "pretrain": {
        "scales": {
            "tiny": {
                "settings": {
                    k: v
                    for k, v in tiny_config("", "").items()
                    if k not in ("run", "dataset", "backbone", "data_dir", "out_dir")
                },
                "resources": {"threads": 1},
            }
        },
        "runs": {"toy": {"dataset": "dtd10", "backbone": "test_resnet"}},
    },  # fmt: skip
    "probe": {
        "random_init": {"random_toy": {"like": "toy", "seed": 0}},
        "frontier": [],
        "features": {"workers": 0, "device": "cpu"},
        "few_shot": {"seeds": [0, 1]},
        "linear": {"folds": 2, "max_iter": 50, "device": "cpu"},
        "knn": {"device": "cpu"},
    },
    "tables": {"toy": TOY_TABLE},
}
DAG_SNAKEFILE = """
from snakemake.utils import validate
configfile: "faults.yaml"
validate(config["probe"], "workflow/schemas/probe.schema.yaml")
include: "workflow/rules/common.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/tables.smk"
"""
TARGET = "tables/toy.csv"
# The files of every stage, and the columns or keys that hold times (they differ run to run).
TIMES = {"wall_time_s", "pretrain_wall_s", "probe_wall_s", "checkpoint_sha256"}


def make_dag(folder: Path) -> Path:
    copy_workflow(folder)
    (folder / "Snakefile").write_text(DAG_SNAKEFILE)
    write_yaml(DAG_CONFIG, folder / "faults.yaml")
    write_tiny_dataset(folder / "data" / "dtd10", classes=4)
    return folder


def snakemake(folder: Path, *args: str, timeout: int = 600, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", *args], cwd=folder,
                          env=subprocess_env(**env), capture_output=True, text=True, timeout=timeout)  # fmt: skip


def output_of(result) -> str:
    return result.stdout + result.stderr


def dag_outputs(folder: Path) -> dict:
    """Every stage's output in comparable form: weights, features, subsets, results, the table."""
    values = {"weights": {part: load(folder / "runs/toy/final.pt")[part] for part in ("encoder", "probe")}}
    for path in sorted((folder / "features").rglob("*.pt")):
        data = load(path)
        values[str(path.relative_to(folder))] = (data["features"], data["labels"])
    for path in sorted((folder / "fewshot").rglob("*.npz")):
        values[str(path.relative_to(folder))] = path.read_bytes()
    for path in sorted((folder / "results").rglob("*.json")):
        result = json.loads(path.read_text())
        values[str(path.relative_to(folder))] = {k: v for k, v in result.items() if k not in TIMES}
    table = pd.read_csv(folder / TARGET)
    values[TARGET] = table.drop(columns=[c for c in table.columns if c in TIMES])
    values["tables/toy.md"] = (folder / "tables/toy.md").read_text()
    return values


def assert_same_outputs(expected: dict, found: dict):
    assert expected.keys() == found.keys()
    for name, value in expected.items():
        if name == "weights":
            for part in value:
                for key in value[part]:
                    assert torch.equal(value[part][key], found[name][part][key]), f"{part}.{key}"
        elif isinstance(value, tuple):
            assert all(torch.equal(a, b) for a, b in zip(value, found[name])), name
        elif isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, found[name], check_exact=True)
        elif name.endswith(".md"):  # the markdown prints the wall times: compare it without them
            assert re.sub(r"\d+(\.\d+)? ?(s|min)\b", "T", value) == re.sub(
                r"\d+(\.\d+)? ?(s|min)\b", "T", found[name]
            ), name
        else:
            assert value == found[name], name


@pytest.fixture(scope="module")
def reference_dag(tmp_path_factory):
    """The tiny DAG built once without faults: (folder, its outputs)."""
    folder = make_dag(tmp_path_factory.mktemp("dag") / "reference")
    result = snakemake(folder, TARGET)
    assert result.returncode == 0, output_of(result)[-5000:]
    return folder, dag_outputs(folder)


# (stage, the target asked for, the write its job is killed at). Each target's inputs are built
# by the invocations before it, so the job killed is the stage's own.
KILLS = [
    ("pretrain", "runs/toy/final.pt", "*runs/toy/checkpoint.pt@3"),  # mid-epoch 1: step 2's checkpoint is kept
    ("extract_features", "features/toy/dtd10/train.pt", "*features/toy/dtd10/train.pt"),
    ("few_shot_indices", "fewshot/dtd10/2shot.npz", "*fewshot/dtd10/2shot.npz"),
    ("probe", "results/toy/linear/dtd10.json", "*results/toy/linear/dtd10.json"),
    ("table assembly", TARGET, "*tables/toy.csv"),
]


@pytest.mark.slow
def test_dag_killed_at_every_stage_then_rerun_gives_the_same_table(reference_dag, tmp_path):
    """One folder, killed once at each stage in turn (each rerun gets one stage further), then
    finished: every output equals the uninterrupted build's."""
    reference, expected = reference_dag
    folder = make_dag(tmp_path / "dag")
    for stage, output, pattern in KILLS:
        fault_dir = tmp_path / f"fault-{stage}"
        fault_dir.mkdir()
        result = snakemake(folder, output, LEJEPA_FAULT_KILL=pattern, LEJEPA_FAULT_DIR=str(fault_dir))
        assert result.returncode != 0, (stage, output_of(result)[-3000:])
        assert (fault_dir / "kill_count").exists(), (stage, output_of(result)[-3000:])  # the fault was met
        if result.returncode == -signal.SIGKILL:  # a job run inside Snakemake's own process: Snakemake died
            locked = snakemake(folder, output)  # the lock a killed Snakemake leaves says so
            assert locked.returncode != 0 and "Directory cannot be locked" in output_of(locked)
            assert "--unlock" in output_of(locked)
            unlock = snakemake(folder, "--unlock", output)
            assert unlock.returncode == 0, output_of(unlock)
        else:
            assert "Error in rule" in output_of(result)
        assert not (folder / output).exists(), stage  # a killed write never leaves the final name
        if stage == "pretrain":
            assert load(folder / "runs/toy/checkpoint.pt")["step"] == 2  # what the rerun resumes from
    done = snakemake(folder, TARGET)
    assert done.returncode == 0, output_of(done)[-5000:]
    assert_same_outputs(expected, dag_outputs(folder))
    assert leftovers(folder / "runs") == leftovers(folder / "results") == leftovers(folder / "tables") == []
    assert leftovers(folder / "features") == [] and leftovers(folder / "fewshot") == []


@pytest.mark.slow
def test_dag_corrupted_result_stops_the_table_until_it_is_recomputed(reference_dag, tmp_path):
    reference, expected = reference_dag
    folder = tmp_path / "dag"
    shutil.copytree(reference, folder, symlinks=True)
    result_file = folder / "results/toy/linear/dtd10.json"
    result_file.write_text(result_file.read_text()[:40])  # truncated after the table was built
    (folder / TARGET).unlink()  # the table asked for again
    broken = snakemake(folder, TARGET)
    assert broken.returncode != 0
    log = (folder / "logs/tables/toy.log").read_text()
    assert "cannot read probe result results/toy/linear/dtd10.json (JSONDecodeError:" in log
    assert "Delete it and rerun; the probe rule computes it again" in log
    assert not (folder / TARGET).exists() and not (folder / "tables/toy.md").exists()  # never a wrong table
    result_file.unlink()  # the remedy
    fixed = snakemake(folder, TARGET)
    assert fixed.returncode == 0, output_of(fixed)[-3000:]
    assert_same_outputs(expected, dag_outputs(folder))


@pytest.mark.slow
def test_two_snakemake_invocations_at_once_the_lock_says_so(reference_dag, tmp_path):
    reference, expected = reference_dag
    folder = make_dag(tmp_path / "dag")
    fault_dir = tmp_path / "pause"
    fault_dir.mkdir()
    target = "runs/toy/final.pt"
    env = subprocess_env(LEJEPA_FAULT_PAUSE="*runs/toy/checkpoint.pt", LEJEPA_FAULT_DIR=str(fault_dir))
    command = [sys.executable, "-m", "snakemake", "--cores", "1", target]
    first = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (fault_dir / "paused").exists():  # the first one's job is mid-run (held before a checkpoint)
            assert first.poll() is None and time.monotonic() < deadline, (
                first.stdout.read() if first.poll() is not None else "timeout"
            )
            time.sleep(0.1)
        second = snakemake(folder, target)
        assert second.returncode != 0
        assert "Error: Directory cannot be locked." in output_of(second)
        assert "no other Snakemake process is trying to create the same files" in output_of(second)
    finally:
        (fault_dir / "release").touch()
        output = first.communicate(timeout=300)[0]
    assert first.returncode == 0, output[-3000:]  # the second invocation did not disturb the first
    assert_same_weights(folder / target, reference / target)


@pytest.mark.slow
def test_report_killed_then_rerun_gives_a_complete_report(reference_dag, tmp_path):
    """Snakemake writes report.html in place (its own code, not lejepa.io): killed while writing
    it, it leaves a partial file; the rerun writes the whole report again."""
    reference, _ = reference_dag
    folder = tmp_path / "dag"
    shutil.copytree(reference, folder, symlinks=True)
    complete = snakemake(folder, "--report", "complete.html", TARGET)
    assert complete.returncode == 0, output_of(complete)[-3000:]
    killed = snakemake(folder, "--report", "report.html", TARGET, LEJEPA_FAULT_KILL_OPEN="*report.html")
    assert killed.returncode == -signal.SIGKILL, output_of(killed)[-3000:]
    assert (folder / "report.html").stat().st_size == 0  # the partial report of the killed run
    rerun = snakemake(folder, "--report", "report.html", TARGET)
    assert rerun.returncode == 0, output_of(rerun)[-3000:]
    html, expected = (folder / "report.html").read_text(), (folder / "complete.html").read_text()
    assert html.rstrip().endswith("</html>") and "toy.csv" in html and "toy.md" in html
    assert abs(len(html) - len(expected)) < 100  # the same report, up to its creation time


# ---------------------------------------------------------------- the README's table


def test_readme_reliability_table_is_the_suites():
    readme = (REPO / "README.md").read_text()
    assert "## Reliability" in readme, "README.md has no Reliability section"
    section = readme.split("## Reliability", 1)[1].split("\n## ", 1)[0]
    assert fault_table_markdown() in section, (
        "README's fault table differs from tests/test_faults.py FAULTS:\n" + fault_table_markdown()
    )
    this_file = Path(__file__).read_text()
    stages = {"prepare", "pretrain", "extract_features", "few_shot_indices", "probe", "table assembly", "report"}
    assert {stage for stage, *_ in FAULTS} == stages
    for stage, fault, outcome, tests in FAULTS:
        assert outcome in (SAME, CLEAR), (stage, fault)
        for test in tests:
            file, _, name = test.rpartition("::")
            source = (Path(__file__).parent / file).read_text() if file else this_file
            function, _, param = name.partition("[")
            assert re.search(rf"^def {re.escape(function)}\(", source, re.M), f"{test} does not exist"
            if param:
                assert f'"{param[:-1]}"' in source, f"{test}: no case {param[:-1]!r}"


if __name__ == "__main__":
    print(fault_table_markdown())
