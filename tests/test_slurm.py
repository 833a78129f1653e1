"""`snakemake --profile slurm` through a real single-node Slurm cluster.

Starts Slurm with ../shared/scripts/local-slurm.sh (root, apt installs slurm-wlm and
munge when missing), builds a reduced tables/table6.csv and the tiny-scale
tables/table2.csv (its whole DAG: data from the offline mirror, pretraining, probes) in
temporary copies of the workflow through real sbatch jobs, checks in the plugin's Slurm
logs (and table 6's rule log) that the jobs ran as Slurm jobs, and stops the cluster if
the test started it.
When Slurm cannot be started the test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

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
def slurm_cluster(require_shared):
    """A running local Slurm cluster; stopped afterwards unless it was already up."""
    require_shared("scripts/local-slurm.sh", "it starts the local Slurm cluster")
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


def test_table6_through_slurm(slurm_cluster, workflow_copy):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    copy = workflow_copy
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


MIRROR = REPO.parent / "shared" / "datasets"


def test_table2_tiny_through_slurm(slurm_cluster, workflow_copy, require_shared):
    """Table 2 at tiny scale (data preparation, pretraining, features, probes, the table)
    built by `snakemake --profile slurm`, every job an sbatch job of the local cluster."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    require_shared("datasets", "the offline dataset mirror the tiny table 2 is prepared from")
    copy = workflow_copy
    # The mirror's path is relative to the repository: point the copy at it. One CPU and
    # 2 GB per job so that two jobs share the 2-core node of local-slurm.sh.
    small_job = {"threads": 1, "mem_mb": 2000, "runtime": 15}
    settings = {
        "data": {"mirror_dir": str(MIRROR)},
        "resources": {"data": small_job, "probe": small_job},
        "pretrain": {"scales": {"tiny": {"resources": small_job}}},
    }
    (copy / "slurm_tiny.yaml").write_text(yaml.safe_dump(settings))

    result = subprocess.run(
        ["timeout", "-k", "10", "1500", sys.executable, "-m", "snakemake", "tables/table2.csv", "--profile", "slurm",
         "--slurm-keep-successful-logs", "--config", "scale=tiny", "--configfile", "slurm_tiny.yaml"],
        cwd=copy,
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]

    # One sbatch job per job of the DAG (its "Job stats" total), each with its own Slurm log.
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: (.+?)\)\.", output)
    planned = re.search(r"^total\s+(\d+)\s*$", output, re.MULTILINE)
    assert planned and len(submitted) == int(planned.group(1)), output[-20000:]
    assert len({job_id for job_id, _ in submitted}) == len(submitted)
    slurm_logs = (copy / ".snakemake" / "slurm_logs").resolve()
    by_rule: dict[str, list[tuple[str, Path]]] = {}
    for job_id, log in submitted:
        log = Path(log)
        assert log.name == f"{job_id}.log" and log.exists(), log
        by_rule.setdefault(log.relative_to(slurm_logs).parts[0], []).append((job_id, log))
    assert set(by_rule) == {f"rule_{name}" for name in (
        "prepare_tinyimagenet100", "prepare_dtd10", "prepare_flowers102", "pretrain",
        "extract_features", "few_shot_indices", "probe", "real_table")}, sorted(by_rule)
    # 2 encoders x 2 datasets x 2 probes; one pretraining run; one table.
    assert [len(by_rule[r]) for r in ("rule_pretrain", "rule_probe", "rule_real_table")] == [1, 8, 1]
    (pretrain_log,) = [log for _, log in by_rule["rule_pretrain"]]
    assert "--executor slurm-jobstep" in pretrain_log.read_text()  # snakemake ran inside the sbatch job

    table = pd.read_csv(copy / "tables" / "table2.csv")
    assert (table["scale"] == "tiny").all()
    ok = table[table["status"] == "ok"]
    # dtd10 and flowers102, linear_1shot and linear, pretrained and random-init: 8 cells.
    assert len(ok) == 8, table[["row", "column", "probe", "status"]].to_string()
    assert set(ok["row"]) == {"lejepa_vitl", "random_init"}
    assert set(ok["column"]) == {"dtd", "flowers102"}
    assert set(ok["probe"]) == {"linear_1shot", "linear"}
    assert ok["accuracy"].between(0, 100).all()
    for _, cell in ok.iterrows():
        stored = json.loads((copy / cell["result"]).read_text())
        assert cell["accuracy"] == pytest.approx(stored["accuracy"]), cell["result"]
    paper = table.set_index(["row", "probe", "column"])["paper"]
    assert paper[("lejepa_vitl", "linear", "dtd")] == pytest.approx(78.30)
    assert (copy / "tables" / "table2.md").exists()
