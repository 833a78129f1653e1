"""A pretraining job killed mid-run is retried by Snakemake itself (`retries`, the pretrain
rule's `retries: RETRIES`), resumes from runs/<run>/checkpoint.pt and ends with the same
final.pt, bit for bit, as an uninterrupted job.

The kill is tests/fault_site/sitecustomize.py's (see tests/test_faults.py): the job's process
SIGKILLs itself just before it moves its 3rd checkpoint.pt into place, mid-epoch 1, so the
checkpoint it leaves is step 2's. The count is kept in a folder, so the retried process,
which writes more checkpoints, is not killed again.
"""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import copy_workflow, tiny_train_config, write_tiny_dataset

REPO = Path(__file__).resolve().parents[1]
FAULT_SITE = Path(__file__).resolve().parent / "fault_site"

SNAKEFILE = """
configfile: "retries.yaml"
include: "workflow/rules/common.smk"
include: "workflow/rules/pretrain.smk"
"""
# conftest's tiny run, 3 steps per epoch, checkpointed after every step; the workflow sets the rest.
SETTINGS = {
    key: value
    for key, value in tiny_train_config(max_steps_per_epoch=3, checkpoint_every_steps=1).items()
    if key not in ("run", "dataset", "backbone", "data_dir", "out_dir", "threads")
}
TARGET = "runs/toy/final.pt"
# Columns of metrics.csv that time the run (they differ between any two runs).
TIMES = ["img_per_s", "wall_s"]


def make_folder(folder: Path, *, retries: int) -> Path:
    copy_workflow(folder)
    (folder / "Snakefile").write_text(SNAKEFILE)
    config = {
        "scale": "tiny",
        "retries": retries,
        "data": {"root": "data"},
        "pretrain": {
            "scales": {"tiny": {"settings": SETTINGS, "resources": {"threads": 1}}},
            "runs": {"toy": {"dataset": "toy", "backbone": "test_resnet"}},
        },
    }
    (folder / "retries.yaml").write_text(yaml.safe_dump(config))
    write_tiny_dataset(folder / "data" / "toy", classes=4)
    return folder


def snakemake(folder: Path, **env) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(FAULT_SITE), str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path, **env}
    command = [sys.executable, "-m", "snakemake", "--cores", "1", TARGET]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=900)


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.mark.slow
def test_pretrain_killed_mid_run_is_retried_by_snakemake_and_ends_with_the_same_weights(tmp_path):
    uninterrupted = make_folder(tmp_path / "uninterrupted", retries=1)
    done = snakemake(uninterrupted)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]

    folder = make_folder(tmp_path / "killed", retries=1)
    fault_dir = tmp_path / "fault"
    fault_dir.mkdir()
    retried = snakemake(folder, LEJEPA_FAULT_KILL="*runs/toy/checkpoint.pt@3", LEJEPA_FAULT_DIR=str(fault_dir))
    output = retried.stdout + retried.stderr
    assert retried.returncode == 0, output[-5000:]  # one invocation: Snakemake's own retry finished the job

    # The first attempt was killed at the 3rd checkpoint write; its retry resumed from step 2's.
    assert (fault_dir / "kill_count").read_text().startswith("...")
    assert "Error in rule pretrain" in output and "Trying to restart job" in output, output[-5000:]
    log = (folder / "logs/pretrain/toy.log").read_text()  # the retry's log
    assert "resumed runs/toy/checkpoint.pt: epoch 0, batch 2, step 2" in log

    expected, found = load(uninterrupted / TARGET), load(folder / TARGET)
    for part in ("encoder", "probe"):
        assert expected[part].keys() == found[part].keys()
        for key in expected[part]:
            assert torch.equal(expected[part][key], found[part][key]), f"{part}.{key}"
    assert expected["config"] == found["config"]
    pd.testing.assert_frame_equal(  # the metrics each holds (NaN: no held-out split)
        pd.DataFrame(expected["history"]).drop(columns=TIMES),
        pd.DataFrame(found["history"]).drop(columns=TIMES),
        check_exact=True,
    )
    pd.testing.assert_frame_equal(
        pd.read_csv(uninterrupted / "runs/toy/metrics.csv").drop(columns=TIMES),
        pd.read_csv(folder / "runs/toy/metrics.csv").drop(columns=TIMES),
        check_exact=True,
    )
