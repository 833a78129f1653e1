"""`snakemake --profile slurm` through a real single-node Slurm cluster.

Starts Slurm with ../shared/scripts/local-slurm.sh (root, apt installs slurm-wlm and
munge when missing), builds a reduced tables/table6.csv in a temporary copy of the
workflow through real sbatch jobs, checks in the plugin's Slurm log and in the rule's
own log that the job ran as a Slurm job, and stops the cluster if this test started it.
When Slurm cannot be started the test is skipped with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import copy_workflow

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
LOCAL_SLURM = REPO.parent / "shared" / "scripts" / "local-slurm.sh"

TINY_TABLE6 = {
    "table6": {
        "repeats": 2,
        "warmup": 1,
        "device": "cpu",
        "grid": [{"n": 64, "m": 16, "knots": 8, "d": 32}, {"n": 128, "m": 32, "knots": 16, "d": 32}],
    },
    "resources": {"table6": {"threads": 1, "mem_mb": 1000, "runtime": 5}},
}


def slurm_is_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    return subprocess.run(["sinfo"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture
def slurm_cluster():
    """A running local Slurm cluster; stopped afterwards unless it was already up."""
    if not LOCAL_SLURM.exists():
        pytest.skip(f"{LOCAL_SLURM} not found (expected ../shared beside the repository)")
    if os.geteuid() != 0:
        pytest.skip("starting a local Slurm cluster needs root")
    was_up = slurm_is_up()
    start = subprocess.run(
        ["timeout", "-k", "10", "300", "bash", str(LOCAL_SLURM), "start"], capture_output=True, text=True
    )
    if start.returncode != 0:
        pytest.skip(f"local Slurm could not start (exit {start.returncode}): {start.stderr.strip()[-1500:]}")
    yield
    if not was_up:
        subprocess.run(["timeout", "-k", "10", "120", "bash", str(LOCAL_SLURM), "stop"], capture_output=True)


def test_table6_through_slurm(slurm_cluster, tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    copy = copy_workflow(tmp_path / "workflow_copy")
    (copy / "tiny.yaml").write_text(yaml.safe_dump(TINY_TABLE6))

    result = subprocess.run(
        ["timeout", "-k", "10", "300", sys.executable, "-m", "snakemake", "--profile", "slurm", "tables/table6.csv",
         "--slurm-keep-successful-logs", "--configfile", "tiny.yaml"],
        cwd=copy,
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output

    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", output)
    assert len(job_ids) == 1, output
    job_id = job_ids[0]
    slurm_log = copy / ".snakemake" / "slurm_logs" / "rule_table6" / f"{job_id}.log"
    assert slurm_log.exists(), sorted(str(p) for p in (copy / ".snakemake").rglob("*.log"))
    assert "--executor slurm-jobstep" in slurm_log.read_text()  # snakemake ran inside the sbatch job
    rule_log = (copy / "logs" / "table6.log").read_text()
    assert f"SLURM_JOB_ID {job_id}," in rule_log  # the script saw Slurm's environment

    table = pd.read_csv(copy / "tables" / "table6.csv")
    assert table[["N", "M", "knots", "D"]].values.tolist() == [[64, 16, 8, 32], [128, 32, 16, 32]]
    assert (table["mean_ms"] > 0).all()
    assert (copy / "tables" / "table6.md").exists()
