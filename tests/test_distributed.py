"""SIGReg and the LeJEPA loss under DDP (2 gloo processes, float64) equal one
process holding the whole batch: the statistic on every rank, the loss
averaged over ranks and the layer's gradients after DDP's averaging.

The pretraining engine across 2 gloo processes (lejepa.train.main, as srun or torchrun
start it): the global batch is the one-process batch split between the ranks, every rank
draws the same SIGReg directions at every step, a run stopped inside an epoch resumes at
that batch and ends bit for bit as an uninterrupted one, and only rank 0 writes the
checkpoint, atomically. lejepa.launch reads Slurm's task environment."""

import hashlib
import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lejepa import LeJEPALoss, SIGReg
from lejepa.sigreg import TESTS

WORLD_SIZE = 2
N, D_IN, K, VIEWS, GLOBAL_VIEWS = 16, 5, 6, 3, 2
STEP = 7
# SIGReg alone is exact for any split; the prediction term's per-rank mean
# averaged by DDP is the global mean only for equal splits
SIGREG_ROWS = [(0, 10), (10, 16)]
LOSS_ROWS = [(0, 8), (8, 16)]
TOLERANCE = 1e-10


def make_problem():
    """Inputs (V, N, D_IN) and a linear layer producing the embeddings."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(VIEWS, N, D_IN, generator=generator, dtype=torch.float64)
    inputs[:, :, 0] = inputs[:, :, 0] ** 2  # something non-Gaussian to regularise
    torch.manual_seed(1)
    layer = nn.Linear(D_IN, K).double()
    return inputs, layer


def make_sigreg(test):
    return SIGReg(num_slices=8, knots=9, test=test)


def make_lejepa_loss():
    return LeJEPALoss(lam=0.3, sigreg=SIGReg(num_slices=8))


def run_all(model, inputs, sigreg_rows, loss_rows):
    """Values and gradients for every test and for the loss, on the given rows."""
    results = {}
    for test in sorted(TESTS):
        model.zero_grad()
        start, stop = sigreg_rows
        value = make_sigreg(test)(model(inputs[0, start:stop]), step=STEP)
        value.backward()
        results[test] = (value.detach(), [p.grad.clone() for p in model.parameters()])
    model.zero_grad()
    start, stop = loss_rows
    z = model(inputs[:, start:stop])  # (V, n, K)
    out = make_lejepa_loss()(z[:GLOBAL_VIEWS], z, step=STEP)
    out["loss"].backward()
    results["lejepa"] = (out["loss"].detach(), [p.grad.clone() for p in model.parameters()])
    return results


def worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        inputs, layer = make_problem()
        model = DistributedDataParallel(layer)
        results = run_all(model, inputs, SIGREG_ROWS[rank], LOSS_ROWS[rank])
        loss = results["lejepa"][0].clone()
        dist.all_reduce(loss)
        results["lejepa_mean_over_ranks"] = loss / WORLD_SIZE
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_equals_one_process_on_the_whole_batch(tmp_path):
    mp.spawn(worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    inputs, layer = make_problem()
    reference = run_all(layer, inputs, (0, N), (0, N))
    for rank in range(WORLD_SIZE):
        results = torch.load(tmp_path / f"rank{rank}.pt")
        for test in sorted(TESTS):
            value, grads = results[test]
            expected_value, expected_grads = reference[test]
            torch.testing.assert_close(
                value, expected_value, rtol=0, atol=TOLERANCE, msg=f"{test} value, rank {rank}"
            )
            for grad, expected in zip(grads, expected_grads):
                torch.testing.assert_close(
                    grad, expected, rtol=0, atol=TOLERANCE, msg=f"{test} gradient, rank {rank}"
                )
        torch.testing.assert_close(
            results["lejepa_mean_over_ranks"], reference["lejepa"][0], rtol=0, atol=TOLERANCE
        )
        for grad, expected in zip(results["lejepa"][1], reference["lejepa"][1]):
            torch.testing.assert_close(
                grad, expected, rtol=0, atol=TOLERANCE, msg=f"LeJEPA gradient, rank {rank}"
            )


# ---------------------------------------------------------------- the engine across 2 processes

STOP_AT_STEP = 4  # epoch 2, batch 1 of 3: inside an epoch
ENGINE_RUN = dict(
    run="ddp", dataset="tiny", backbone="test_resnet", projector="32-16", small_stem="none",
    n_global=2, n_local=2, global_size=16, local_size=8, global_scale=[0.3, 1.0], local_scale=[0.05, 0.3],
    batch_size=16, epochs=2, warmup_epochs=0.5, max_steps_per_epoch=3, lr=1e-3, weight_decay=0.05, lam=0.05,
    num_slices=32, t_max=3.0, knots=17, centers="global", seed=0, eval_split=None, device="cpu", threads=1,
    workers=0, progress=False, checkpoint_every_steps=1,
)  # fmt: skip


class _Stop(Exception):
    """Raised on every rank at the start of step STOP_AT_STEP: the run stops there."""


def engine_worker(rank, port, config, record_path, stop):
    """train.main as one of 2 processes, recording each SIGReg draw, each epoch's sample
    order and each atomic write; with `stop`, every rank stops before step STOP_AT_STEP."""
    import lejepa.sigreg as sigreg_module
    from lejepa import train

    os.environ.update(WORLD_SIZE=str(WORLD_SIZE), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), OMP_NUM_THREADS="1")  # fmt: skip
    record = {"directions": [], "orders": [], "writes": []}
    draw = sigreg_module.random_directions

    def recorded_draw(*, step, **kwargs):
        directions = draw(step=step, **kwargs)
        record["directions"].append([step, hashlib.sha1(directions.numpy().tobytes()).hexdigest()])
        return directions

    sampler_iter = train.ResumableSampler.__iter__

    def recorded_iter(sampler):
        pairs = list(sampler_iter(sampler))
        record["orders"].append({"epoch": sampler.epoch, "skip": sampler.skip, "indices": [i for _, i in pairs]})
        return iter(pairs)

    atomic = train.atomic_path

    def recorded_atomic(path):
        record["writes"].append(Path(path).name)
        return atomic(path)

    schedule = train.learning_rate

    def stopping_schedule(step, **kwargs):
        if stop and step == STOP_AT_STEP:
            raise _Stop
        return schedule(step, **kwargs)

    sigreg_module.random_directions = recorded_draw
    train.ResumableSampler.__iter__ = recorded_iter
    train.atomic_path = recorded_atomic
    train.learning_rate = stopping_schedule
    try:
        train.main(config)
    except _Stop:
        pass
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    Path(record_path.format(rank=rank)).write_text(json.dumps(record))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_engine(config, records, *, stop=False):
    mp.spawn(engine_worker, args=(free_port(), config, records, stop), nprocs=WORLD_SIZE, join=True)
    return [json.loads(Path(records.format(rank=rank)).read_text()) for rank in range(WORLD_SIZE)]


@pytest.mark.slow
def test_two_processes_batch_directions_resume_and_checkpoint(tiny_dataset, tmp_path):
    from lejepa import train

    def config(out_dir):
        return {**ENGINE_RUN, "data_dir": str(tiny_dataset), "out_dir": str(tmp_path / out_dir)}

    whole = run_engine(config("whole"), str(tmp_path / "whole-{rank}.json"))
    stopped = run_engine(config("resumed"), str(tmp_path / "stopped-{rank}.json"), stop=True)
    checkpoint = torch.load(tmp_path / "resumed" / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert (checkpoint["step"], checkpoint["epoch"], checkpoint["batch_in_epoch"]) == (STOP_AT_STEP, 1, 1)
    resumed = run_engine(config("resumed"), str(tmp_path / "resumed-{rank}.json"))

    # the global batch: at every step the 2 ranks' 8 images are the one-process batch of 16
    per_rank = ENGINE_RUN["batch_size"] // WORLD_SIZE
    one_process = train.ResumableSampler(range(96), num_replicas=1, rank=0, seed=ENGINE_RUN["seed"])
    for epoch in range(ENGINE_RUN["epochs"]):
        one_process.set_epoch(epoch)
        order = [index for _, index in one_process]
        for step in range(ENGINE_RUN["max_steps_per_epoch"]):
            together = set()
            for rank in range(WORLD_SIZE):
                indices = whole[rank]["orders"][epoch]["indices"][step * per_rank : (step + 1) * per_rank]
                assert len(indices) == per_rank
                together |= set(indices)
            assert together == set(order[step * 16 : (step + 1) * 16]), (epoch, step)

    # the directions: the same on both ranks at every step, drawn once per step; the stopped
    # and resumed run draws those of the same steps
    steps = ENGINE_RUN["epochs"] * ENGINE_RUN["max_steps_per_epoch"]
    assert [step for step, _ in whole[0]["directions"]] == list(range(steps))
    assert whole[0]["directions"] == whole[1]["directions"]
    for rank in range(WORLD_SIZE):
        assert stopped[rank]["directions"] + resumed[rank]["directions"] == whole[0]["directions"]

    # the resume position: each rank starts the interrupted epoch after its share of the
    # batch already trained, and the run ends bit for bit as the uninterrupted one
    for rank in range(WORLD_SIZE):
        first = resumed[rank]["orders"][0]
        assert (first["epoch"], first["skip"]) == (1, per_rank)
        assert first["indices"] == whole[rank]["orders"][1]["indices"][per_rank:]
    expected = torch.load(tmp_path / "whole" / "final.pt", map_location="cpu", weights_only=False)
    got = torch.load(tmp_path / "resumed" / "final.pt", map_location="cpu", weights_only=False)
    for part in ("encoder", "probe"):
        assert expected[part].keys() == got[part].keys()
        for key in expected[part]:
            assert torch.equal(expected[part][key], got[part][key]), f"{part}.{key}"
    assert [row["loss"] for row in expected["history"]] == [row["loss"] for row in got["history"]]

    # the checkpoint: written by rank 0 only, through atomic_path (a temporary file renamed
    # onto checkpoint.pt), after every step and every epoch; no temporary file is left
    assert whole[1]["writes"] == [] and stopped[1]["writes"] == [] and resumed[1]["writes"] == []
    assert whole[0]["writes"] == ["checkpoint.pt"] * steps + ["final.pt"]
    assert stopped[0]["writes"] == ["checkpoint.pt"] * STOP_AT_STEP
    for out_dir in ("whole", "resumed"):
        assert sorted(p.name for p in (tmp_path / out_dir).iterdir()) == ["checkpoint.pt", "final.pt", "metrics.csv"]


# ---------------------------------------------------------------- Slurm's task environment


def test_slurm_task_environment(monkeypatch):
    """In a task srun started (LEJEPA_LAUNCHER=srun), rank, world size and local rank come
    from Slurm, the rendezvous from the first host of the node list and the job id;
    torchrun's variables win; elsewhere one process."""
    from lejepa import launch

    monkeypatch.setattr(launch, "first_host", lambda nodelist: nodelist.split(",")[0].replace("[3-4]", "3"))
    environ = {"LEJEPA_LAUNCHER": "srun", "SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1",
               "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "gpu[3-4]"}  # fmt: skip
    assert launch.distributed_environment(environ) == (8, 5, 1)
    assert environ["MASTER_ADDR"] == "gpu3" and environ["MASTER_PORT"] == str(launch.PORT_BASE + 4242)
    assert (environ["WORLD_SIZE"], environ["RANK"], environ["LOCAL_RANK"]) == ("8", "5", "1")
    torchrun = {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"}
    assert launch.distributed_environment(torchrun) == (2, 1, 1)
    # a batch script or salloc shell (no srun task started by lejepa.launch): one process
    assert launch.distributed_environment({"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "1"}) == (1, 0, 0)


def test_launch_commands():
    from lejepa import launch

    two_nodes = launch.layout({"nodes": 2, "gpus": 4, "threads": 32})
    assert (two_nodes.processes, two_nodes.tasks_per_node, two_nodes.cpus_per_task) == (8, 4, 8)
    command = launch.launch_command(two_nodes, "c.yaml", environ={"SLURM_JOB_ID": "7"})
    assert command[:6] == ["srun", "--nodes=2", "--ntasks=8", "--ntasks-per-node=4", "--cpus-per-task=8",
                           "--kill-on-bad-exit=1"]  # fmt: skip
    assert command[-4:] == ["-m", "lejepa.train", "--config", "c.yaml"]
    one_node = launch.layout({"gpus": 2, "threads": 4})
    assert "--standalone" in launch.launch_command(one_node, "c.yaml", environ={})
    assert launch.launch_command(launch.layout({"gpus": 1}), "c.yaml", environ={}) is None
    with pytest.raises(RuntimeError, match="Slurm"):
        launch.launch_command(two_nodes, "c.yaml", environ={})
    with pytest.raises(ValueError, match="tasks_per_node"):
        launch.layout({"gpus": 4, "tasks_per_node": 2})
    # the job's Snakemake resources give the layout back
    for resources in ({"nodes": 2, "gpus": 4, "threads": 32}, {"nodes": 3, "gpus": 1, "threads": 8},
                      {"nodes": 1, "tasks_per_node": 2, "threads": 2}, {"gpus": 1, "threads": 16}):  # fmt: skip
        shape = launch.layout(resources)
        plugin = {k: v for k, v in launch.slurm_resources(resources).items() if v is not None}
        assert launch.job_layout(plugin, resources["threads"]) == shape, resources
