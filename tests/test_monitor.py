"""The monitoring rules: each run's curves and every probe result in one CSV, from what is
on disk, without ever starting a pretraining or a probe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lejepa.tables import results_frame

METRICS = """epoch,step,loss,prediction,sigreg,online_acc,online_eval_acc,lr,img_per_s,wall_s
1,10,0.9,0.3,20.0,10.0,12.0,0.002,50.0,20.0
2,20,0.7,0.3,14.0,15.0,16.5,0.001,55.0,39.0
"""


def write_result(path: Path, **fields) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": path.parts[-3], "probe": path.parts[-2], "dataset": path.stem,
                                "status": "ok", "seeds": [0, 1], **fields}))  # fmt: skip
    return path


def test_results_frame_has_one_line_per_result_and_refuses_a_broken_one(tmp_path):
    second = write_result(tmp_path / "results/b/linear/cifar10.json", accuracy=50.0, std=1.0)
    first = write_result(tmp_path / "results/a/knn/cifar10.json", accuracy=40.0, std=0.0)
    frame = results_frame([second, first])
    assert frame.run.tolist() == ["a", "b"] and frame.accuracy.tolist() == [40.0, 50.0]
    assert frame.seeds.tolist() == ["0 1", "0 1"] and frame.path.tolist() == [str(first), str(second)]
    broken = write_result(tmp_path / "results/c/linear/cifar10.json", accuracy=float("nan"), std=0.0)
    with pytest.raises(ValueError, match="results/c/linear/cifar10.json"):
        results_frame([first, broken])


def snakemake(*args: str, cwd: Path) -> str:
    """Snakemake's stdout and stderr (a dry run prints its plan on the one, a run its jobs on the other)."""
    result = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.mark.slow
def test_monitor_plots_runs_on_disk_and_gathers_results_without_training(workflow_copy):
    run = "cifar10_resnet18_tiny"  # a run of config/pretrain.yaml, still training: no final.pt
    (workflow_copy / "runs" / run).mkdir(parents=True)
    (workflow_copy / "runs" / run / "metrics.csv").write_text(METRICS)
    write_result(workflow_copy / f"results/{run}/linear/cifar10.json", accuracy=33.0, std=0.5)

    ran = snakemake("--cores", "1", "monitor", cwd=workflow_copy)
    assert "rule run_metrics" in ran  # the jobs it ran are listed: neither a pretraining nor a probe
    assert "rule pretrain" not in ran and "rule probe" not in ran
    assert (workflow_copy / f"results/{run}/metrics.png").stat().st_size > 0
    gathered = pd.read_csv(workflow_copy / "results/all.csv")
    assert gathered.run.tolist() == [run] and gathered.accuracy.tolist() == [33.0]

    assert "rule run_metrics" not in snakemake("-n", "monitor", cwd=workflow_copy)  # up to date
    with open(workflow_copy / "runs" / run / "metrics.csv", "a") as metrics:  # one more epoch
        metrics.write("3,30,0.6,0.3,12.0,18.0,19.0,0.0005,56.0,58.0\n")
    os.utime(workflow_copy / "runs" / run / "metrics.csv", (1e9, 2e9))
    assert "rule run_metrics" in snakemake("-n", "monitor", cwd=workflow_copy)
