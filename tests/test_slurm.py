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
from conftest import FASTER_TINY_SCALE, real_slurm_path

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


@pytest.fixture(scope="module")
def slurm_cluster(require_shared, fast_scontrol):
    """A running local Slurm cluster, shared by this module's tests, with the real scontrol on
    PATH (conftest's `fast_scontrol` off); stopped afterwards unless it was already up."""
    require_shared("scripts/local-slurm.sh", "it starts the local Slurm cluster")
    if os.geteuid() != 0:
        pytest.skip("starting a local Slurm cluster needs root")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", real_slurm_path(fast_scontrol))
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
    (copy / "faster.yaml").write_text(yaml.safe_dump(FASTER_TINY_SCALE))

    # The plugin polls squeue 1 s after a submission or a finished job (the profile: 6 s), so that
    # the next job of the DAG is submitted as soon as its inputs are there.
    result = subprocess.run(
        ["timeout", "-k", "10", "1500", sys.executable, "-m", "snakemake", "tables/table2.csv", "--profile", "slurm",
         "--slurm-keep-successful-logs", "--slurm-init-seconds-before-status-checks", "1", "--config", "scale=tiny",
         "--configfile", "slurm_tiny.yaml", "faster.yaml"],
        cwd=copy,
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]

    # One sbatch job per job of the DAG (its "Job stats" total) but the local rules (downloads,
    # few-shot indices, table assembly, the target rule), each with its own Slurm log.
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: (.+?)\)\.", output)
    planned = re.search(r"^total\s+(\d+)\s*$", output, re.MULTILINE)
    local = re.findall(r"^localrule (\S+):$", output, re.MULTILINE)
    assert set(local) <= {"prepare_tinyimagenet100", "prepare_dtd10", "prepare_flowers102", "few_shot_indices",
                          "real_table"}, local  # fmt: skip
    assert planned and len(submitted) == int(planned.group(1)) - len(local), output[-20000:]
    assert len({job_id for job_id, _ in submitted}) == len(submitted)
    slurm_logs = (copy / ".snakemake" / "slurm_logs").resolve()
    by_rule: dict[str, list[tuple[str, Path]]] = {}
    for job_id, log in submitted:
        log = Path(log)
        assert log.name == f"{job_id}.log" and log.exists(), log
        by_rule.setdefault(log.relative_to(slurm_logs).parts[0], []).append((job_id, log))
    assert set(by_rule) == {"rule_pretrain", "rule_extract_features", "rule_probe"}, sorted(by_rule)
    # 2 encoders x 2 datasets x 2 probes; one pretraining run; the table assembled locally.
    assert [len(by_rule[r]) for r in ("rule_pretrain", "rule_probe")] == [1, 8] and local.count("real_table") == 1
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


# ---------------------------------------------------------------- DDP through Slurm

# A tiny run on conftest's generated dataset, as 2 CPU processes (gloo) on one node: the job
# asks for --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 (the 2 cores of local-slurm.sh's
# node) and starts its processes with srun, the launch path of a multi-node GPU job.
DDP_RUN = dict(
    dataset="tiny", backbone="test_resnet", scale="tiny", projector="32-16", global_size=16, local_size=8,
    batch_size=16, epochs=1, max_steps_per_epoch=3, lr=1e-4, warmup_epochs=0, num_slices=32, device="cpu",
    workers=0, progress=False, checkpoint_every_steps=1,
    resources=dict(threads=2, mem_mb=3000, runtime=10, nodes=1, gpus=0, tasks_per_node=2),
)  # fmt: skip


def test_ddp_as_two_slurm_tasks_equals_one_process(slurm_cluster, workflow_copy, tiny_dataset):
    """`snakemake --profile slurm` runs a pretraining as one sbatch job of 2 tasks that srun
    starts (ranks from SLURM_PROCID, rendezvous on the first host of the node list, gloo);
    its weights equal those of one process training on the same global batch of 16.

    lr 1e-4 keeps AdamW's steps on gradients that are zero up to rounding below the
    tolerance (tests/test_train.py::test_ddp_two_processes_match_one_process)."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    import torch

    from lejepa import train

    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True).stdout.split()
    if not cpus or int(cpus[0].rstrip("+")) < 2:
        pytest.skip(f"the local Slurm node has {cpus} CPUs; 2 tasks x 1 CPU need 2")

    copy = workflow_copy
    (copy / "data").mkdir()
    (copy / "data" / "tiny").symlink_to(tiny_dataset)
    (copy / "ddp.yaml").write_text(yaml.safe_dump({"pretrain": {"runs": {"ddp_tiny": DDP_RUN}}}))
    result = subprocess.run(
        ["timeout", "-k", "10", "600", sys.executable, "-m", "snakemake", "--profile", "slurm",
         "runs/ddp_tiny/final.pt", "--slurm-keep-successful-logs", "--configfile", "ddp.yaml"],
        cwd=copy,
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    output = result.stdout + result.stderr
    log = (copy / "logs" / "pretrain" / "ddp_tiny.log").read_text() if result.returncode == 0 else ""
    assert result.returncode == 0, output[-10000:] + "\n".join(
        p.read_text()[-5000:] for p in (copy / "logs").rglob("*.log")
    )

    # the sbatch job asked for the layout, with the resources that make it an srun (mpi) job
    assert "nodes=1" in output and "tasks_per_node=2" in output and "cpus_per_task=1" in output and "mpi=srun" in output
    (job_id,) = re.findall(r"submitted with SLURM jobid (\d+)", output)
    # the job started its processes with srun, and each of the 2 knew its rank from Slurm
    srun_line = next(line for line in log.splitlines() if line.startswith(f"SLURM_JOB_ID {job_id}: srun "))
    assert "--ntasks=2" in srun_line and "--ntasks-per-node=2" in srun_line, srun_line
    for rank in (0, 1):
        assert f"lejepa.launch: process {rank} of 2 (local rank {rank})" in log, log[-3000:]
    assert f"Slurm job {job_id}, rendezvous" in log

    distributed = torch.load(copy / "runs" / "ddp_tiny" / "final.pt", map_location="cpu", weights_only=False)
    config = yaml.safe_load((copy / "runs" / "ddp_tiny" / "config.yaml").read_text())
    assert config["threads"] == 1 and config["batch_size"] == 16  # the global batch: 8 per process
    config["data_dir"], config["out_dir"] = str(copy / config["data_dir"]), str(copy / "one_process")
    one = torch.load(train.main(config), map_location="cpu", weights_only=False)
    for part in ("encoder", "probe"):
        for key, value in one[part].items():
            if value.is_floating_point():
                torch.testing.assert_close(distributed[part][key], value, atol=1e-5, rtol=0, msg=f"{part}.{key}")
    for key in ("loss", "prediction", "sigreg", "online_acc"):
        assert distributed["history"][0][key] == pytest.approx(one["history"][0][key], rel=1e-5), key
    assert distributed["history"][0]["step"] == 3


# ---------------------------------------------------------------- what a paper-scale job asks for


def test_paper_dry_run_shows_nodes_and_gpus(workflow_copy):
    """`snakemake -n --profile slurm` of an ImageNet paper run (config/pretrain.yaml: 2 nodes x
    8 GPUs) lists the job's node, task and GPU request; a one-GPU paper run keeps --gpus=1."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--profile", "slurm", "runs/imagenet_convnextv2_huge_paper/final.pt",
         "runs/flowers102_resnet18_paper/final.pt"],
        cwd=workflow_copy, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    resources = dict(
        re.findall(r"wildcards: run=(\S+)\n\s+resources: (.+)", output)
    )  # run -> the job's resources line
    big, one_gpu = resources["imagenet_convnextv2_huge_paper"], resources["flowers102_resnet18_paper"]
    for item in ("nodes=2", "gres=gpu:8", "tasks_per_node=8", "cpus_per_task=8", "mpi=srun", "mem_mb=256000", "gpu=0"):
        assert item in big.split(", "), big
    for item in ("nodes=1", "gpu=1"):
        assert item in one_gpu.split(", "), one_gpu
    assert "mpi=" not in one_gpu and "gres=" not in one_gpu


class _Resources(dict):
    __getattr__ = dict.__getitem__


@pytest.mark.parametrize(
    "resources, expected, absent",
    [
        ({"nodes": 2, "gpus": 8, "threads": 64}, ["--nodes=2", "--ntasks-per-node=8", "--gres=gpu:8",
                                                  "--cpus-per-task=8"], ["--gpus", "--ntasks-per-gpu", "--ntasks="]),
        ({"nodes": 4, "gpus": 1, "threads": 8}, ["--nodes=4", "--ntasks=4", "--gres=gpu:1", "--cpus-per-task=8"],
         ["--gpus", "--ntasks-per-gpu", "--ntasks-per-node"]),
        ({"nodes": 1, "gpus": 0, "tasks_per_node": 2, "threads": 2}, ["--nodes=1", "--ntasks-per-node=2",
                                                                      "--cpus-per-task=1"], ["--gres", "--gpus"]),
        ({"nodes": 1, "gpus": 1, "threads": 16}, ["--nodes=1", "--gpus=1", "--cpus-per-task=16"],
         ["--gres", "--ntasks"]),
    ],
)  # fmt: skip
def test_sbatch_flags_of_the_slurm_plugin(resources, expected, absent):
    """The sbatch command snakemake-executor-plugin-slurm builds from lejepa.launch.slurm_resources."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    from types import SimpleNamespace

    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    from lejepa.launch import slurm_resources

    plugin = {key: value for key, value in slurm_resources(resources).items() if value is not None}
    job = SimpleNamespace(
        resources=_Resources(runtime=60, mem_mb=1000, **plugin), threads=resources["threads"], name="pretrain"
    )
    params = dict(run_uuid="x", slurm_logfile="log", comment_str="c", account="", partition="", workdir="")
    call = get_submit_command(job, params) + set_gres_string(job)
    for flag in expected:
        assert flag in call.split(), (flag, call)
    for flag in absent:
        assert not any(word.startswith(flag) for word in call.split()), (flag, call)
