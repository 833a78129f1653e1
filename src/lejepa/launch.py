"""How a pretraining job's processes are laid out and started: one process per GPU (or
per CPU task) on each of `nodes` nodes.

The rule `pretrain` turns a run's resources (config/pretrain.yaml: nodes, gpus per node,
tasks_per_node, threads and mem_mb per node) into the Snakemake resources that
snakemake-executor-plugin-slurm 2.8.0 turns into sbatch flags (`slurm_resources`), and
workflow/scripts/pretrain.py starts the processes (`launch_command`):

- one process: in the job's own process;
- several, inside a Slurm allocation: `srun` starts one task per process across the
  nodes; each task's rank, world size and local rank come from SLURM_PROCID,
  SLURM_NTASKS and SLURM_LOCALID, and the rendezvous (MASTER_ADDR, MASTER_PORT) is the
  first host of the step's node list (`scontrol show hostnames`) and a port derived from
  the job id (`distributed_environment`, read by lejepa.train.start_processes);
- several on one machine without Slurm: `torchrun --standalone`.

NCCL joins the processes on GPUs, gloo on CPUs (lejepa.train.start_processes).
This module imports neither torch nor Snakemake.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Mapping

# SLURM_JOB_ID -> MASTER_PORT in [PORT_BASE, PORT_BASE + PORT_SPAN): every task of a job
# computes the same port, and a retried job (a new id) gets another one.
PORT_BASE, PORT_SPAN = 20000, 20000


@dataclass(frozen=True)
class Layout:
    """Processes of one pretraining job: `tasks_per_node` on each of `nodes` nodes, each
    with `gpus_per_node // tasks_per_node` GPU (0 on CPU) and `cpus_per_task` CPUs."""

    nodes: int
    tasks_per_node: int
    gpus_per_node: int
    cpus_per_task: int

    @property
    def processes(self) -> int:
        return self.nodes * self.tasks_per_node


def layout(resources: Mapping) -> Layout:
    """A run's resources (lejepa.train.resolve_run: nodes, gpus, tasks_per_node, threads)
    -> its Layout. With GPUs there is one process per GPU; tasks_per_node, if given, must
    say the same. Without GPUs, tasks_per_node CPU processes per node (default 1).
    `threads` are the CPUs of one node, shared among its processes."""
    nodes = int(resources.get("nodes") or 1)
    gpus = int(resources.get("gpus") or 0)
    tasks = resources.get("tasks_per_node")
    if nodes < 1 or gpus < 0 or (tasks is not None and int(tasks) < 1):
        raise ValueError(f"resources: nodes >= 1, gpus >= 0, tasks_per_node >= 1 expected, got {dict(resources)}")
    if gpus and tasks is not None and int(tasks) != gpus:
        raise ValueError(
            f"resources: tasks_per_node ({tasks}) must equal gpus ({gpus}): one process per GPU; "
            "leave tasks_per_node out on GPU jobs"
        )
    tasks_per_node = gpus or int(tasks or 1)
    threads = int(resources.get("threads") or 1)
    return Layout(nodes, tasks_per_node, gpus, max(1, threads // tasks_per_node))


def slurm_resources(resources: Mapping) -> dict:
    """Snakemake resources of a pretraining job for snakemake-executor-plugin-slurm 2.8.0
    (None: not set). `nodes` -> --nodes; a multi-process job is an `mpi` job, so the plugin
    runs the job's script directly in the batch step (not inside `srun -n1`) and the script
    starts the tasks with srun: `tasks_per_node` -> --ntasks-per-node (the plugin wants it
    > 1; one task per node is `tasks` -> --ntasks = nodes), `gres` gpu:G -> --gres=gpu:G
    (per node), `cpus_per_task` -> --cpus-per-task. `tasks_per_gpu` 0 keeps the plugin
    from adding --ntasks-per-gpu (it would bind one GPU to each task). A one-process job
    keeps `gpu` -> --gpus and the plugin's srun -n1."""
    shape = layout(resources)
    if shape.processes == 1:
        return {"nodes": 1, "gpu": shape.gpus_per_node, "mpi": None, "tasks": None, "tasks_per_node": None,
                "tasks_per_gpu": None, "gres": None, "cpus_per_task": None}  # fmt: skip
    one_per_node = shape.tasks_per_node == 1
    return {
        "nodes": shape.nodes,
        "gpu": 0,  # the GPUs are asked per node, through gres
        "mpi": "srun",
        "tasks": shape.processes if one_per_node else None,
        "tasks_per_node": None if one_per_node else shape.tasks_per_node,
        "tasks_per_gpu": 0 if shape.gpus_per_node else None,
        "gres": f"gpu:{shape.gpus_per_node}" if shape.gpus_per_node else None,
        "cpus_per_task": shape.cpus_per_task,
    }


def job_layout(resources: Mapping, threads: int) -> Layout:
    """The Layout back from a job's Snakemake resources (`slurm_resources`) and threads, as
    workflow/scripts/pretrain.py sees them (snakemake.resources, snakemake.threads)."""
    nodes = int(resources.get("nodes") or 1)
    if not resources.get("mpi"):
        return Layout(nodes, 1, int(resources.get("gpu") or 0), threads)
    tasks_per_node = int(resources.get("tasks_per_node") or int(resources["tasks"]) // nodes)
    gres = str(resources.get("gres") or "")
    gpus = int(gres.rsplit(":", 1)[1]) if gres.startswith("gpu:") else 0
    return Layout(nodes, tasks_per_node, gpus, int(resources.get("cpus_per_task") or 1))


def in_slurm_allocation(environ: Mapping = os.environ) -> bool:
    return bool(environ.get("SLURM_JOB_ID"))


def launch_command(shape: Layout, config_path: str, *, environ: Mapping = os.environ) -> list[str] | None:
    """The command that starts a multi-process training of `config_path` (None: train in
    this process). srun inside a Slurm allocation, torchrun --standalone on one machine."""
    train = [sys.executable, "-m", "lejepa.train", "--config", str(config_path)]
    if shape.processes == 1:
        return None
    if in_slurm_allocation(environ):
        # The plugin's job step strips SLURM_* from the environment, so every flag is explicit.
        return [
            "srun",
            f"--nodes={shape.nodes}",
            f"--ntasks={shape.processes}",
            f"--ntasks-per-node={shape.tasks_per_node}",
            f"--cpus-per-task={shape.cpus_per_task}",
            "--kill-on-bad-exit=1",  # one task fails: the step ends, and so does the job
            "--export=ALL,LEJEPA_LAUNCHER=srun",
            *train,
        ]
    if shape.nodes > 1:
        raise RuntimeError(
            f"{shape.nodes} nodes need a Slurm allocation (snakemake --profile slurm); "
            "outside Slurm a run uses one machine (set nodes: 1)"
        )
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={shape.tasks_per_node}", *train[1:]]  # fmt: skip


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list (e.g. 'gpu[003-004,010]' -> 'gpu003'), expanded by
    `scontrol show hostnames`."""
    hosts = subprocess.run(
        ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True
    ).stdout.split()
    if not hosts:
        raise RuntimeError(f"scontrol show hostnames {nodelist!r} gave no host")
    return hosts[0]


def distributed_environment(environ: dict | None = None) -> tuple[int, int, int]:
    """(world_size, rank, local_rank) of this process, for lejepa.train.start_processes.

    torchrun's WORLD_SIZE / RANK / LOCAL_RANK come first. Otherwise, in a task that srun
    started with `launch_command` (LEJEPA_LAUNCHER=srun), Slurm's SLURM_NTASKS /
    SLURM_PROCID / SLURM_LOCALID; then MASTER_ADDR (the first host of the step's nodes)
    and MASTER_PORT (from the job id) are set in `environ` unless already there, and so
    are WORLD_SIZE, RANK and LOCAL_RANK, for torch.distributed's env:// rendezvous.
    Anything else is one process (1, 0, 0)."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" in environ:
        return int(environ["WORLD_SIZE"]), int(environ.get("RANK", 0)), int(environ.get("LOCAL_RANK", 0))
    if environ.get("LEJEPA_LAUNCHER") != "srun" or "SLURM_PROCID" not in environ:
        return 1, 0, 0
    world_size = int(environ.get("SLURM_STEP_NUM_TASKS") or environ["SLURM_NTASKS"])
    rank, local_rank = int(environ["SLURM_PROCID"]), int(environ.get("SLURM_LOCALID", 0))
    if "MASTER_ADDR" not in environ:
        environ["MASTER_ADDR"] = first_host(environ.get("SLURM_STEP_NODELIST") or environ["SLURM_JOB_NODELIST"])
    environ.setdefault("MASTER_PORT", str(PORT_BASE + int(environ["SLURM_JOB_ID"]) % PORT_SPAN))
    environ.update(WORLD_SIZE=str(world_size), RANK=str(rank), LOCAL_RANK=str(local_rank))
    print(
        f"lejepa.launch: process {rank} of {world_size} (local rank {local_rank}) on {socket.gethostname()}, "
        f"Slurm job {environ.get('SLURM_JOB_ID')}, rendezvous {environ['MASTER_ADDR']}:{environ['MASTER_PORT']}",
        file=sys.stderr,
        flush=True,
    )
    return world_size, rank, local_rank
