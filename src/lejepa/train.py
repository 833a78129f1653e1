"""LeJEPA pretraining: multi-crop views, any timm backbone, AdamW + warm-up/cosine, resumable.

    python -m lejepa.train --config runs/<run>/config.yaml [--set key=value ...]
    python -m lejepa.train --help                                                # every setting, its default
    torchrun --nproc_per_node=N -m lejepa.train --config runs/<run>/config.yaml   # DDP
    lejepa.train.main(config)                                                    # from Python

The config is one flat mapping (TRAINING_KEYS and RUNTIME_DEFAULTS, defined in the
torch-free lejepa.train_config and re-exported here); config/pretrain.yaml defines
scales and runs and `resolve_run` turns one run into such a mapping.

What one step does (paper, section 5 and algorithm 2):
  views (Vg global + Vl local per image) -> encoder, one forward per resolution
  -> embeddings z (V, B, K) -> LeJEPALoss = (1 - lam) * prediction + lam * SIGReg,
  plus an online linear probe trained on the detached backbone features of the
  global views (it never sends gradient into the encoder).
  Table 4's options, off by default: `predictor` (every view's embedding passes through
  an MLP before it predicts the centre; SIGReg stays on the embeddings) and `swa_decay`
  (an exponential moving average of the encoder's weights, updated after every step,
  makes the centres without gradient, as the paper's "SWA on the encoder producing mu",
  and is the encoder final.pt holds; the online encoder is kept as online_encoder).

Outputs in out_dir: checkpoint.pt (every epoch and every checkpoint_minutes,
written atomically), metrics.csv, final.pt (only when the run has finished: the
Snakemake rule's output; `lejepa.models.load_encoder` reads it).

metrics.csv, one row per epoch: epoch, step (global steps done), loss,
prediction, sigreg (means over the epoch's steps), online_acc (% of the online
probe's predictions right on the epoch's training batches, global views),
online_eval_acc (% on eval_split after the epoch; empty without one), lr (at the
epoch's last step), img_per_s (training images per second over the epoch's
steps, data waits included), wall_s (the run's wall time so far, evaluation
and checkpoints included, summed over resumed sessions).

Rerunning resumes from checkpoint.pt by itself, bit for bit: the data order is
a function of (seed, epoch), each image's augmentation a function of
(seed, epoch, index), and the checkpoint holds the position inside the epoch
(and model, optimiser, step, RNG states, the epoch's running sums, the metrics).
A checkpoint made with other TRAINING_KEYS is set aside and the run starts afresh.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from lejepa import LeJEPALoss, SIGReg
from lejepa.data import EncodedImages
from lejepa.devices import resolve_device, resolve_workers
from lejepa.io import atomic_path, write_csv
from lejepa.loss import prediction_loss
from lejepa.models import convert_sync_batchnorm, encoder_from_config
from lejepa.progress import format_duration, time_left
from lejepa.train_config import (  # noqa: F401  (the settings need no torch; re-exported here)
    ADDED_TRAINING_KEYS,
    DEFAULT_RESOURCES,
    EXECUTION_KEYS,
    RUNTIME_DEFAULTS,
    TRAINING_KEYS,
    build_parser,
    check_config,
    config_from_arguments,
    load_config,
    resolve_run,
    resolve_workflow_run,
    result_settings,
)
from lejepa.views import MultiCropViews, SeededViews, collate_views, eval_transform


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or inf; the run stops and keeps its last good checkpoint, if it wrote one."""


class CheckpointUnreadable(RuntimeError):
    """runs/<run>/checkpoint.pt exists but cannot be resumed from; the message names it and says what to do."""


# What a resume checkpoint holds (written by main's save_checkpoint).
CHECKPOINT_KEYS = ("config", "encoder", "probe", "optimizer", "step", "epoch", "batch_in_epoch", "wall_s",
                   "history", "epoch_sums", "rng")  # fmt: skip


def read_checkpoint(path) -> dict:
    """torch.load of a resume checkpoint; a file that cannot be read raises CheckpointUnreadable naming it."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except OSError as error:  # permissions, an I/O error: the file itself may be fine
        raise CheckpointUnreadable(
            f"cannot read {path} ({type(error).__name__}: {error}); check its permissions and the disk, then rerun"
        ) from error
    except Exception as error:  # PytorchStreamReader's RuntimeError, EOFError, UnpicklingError, ...
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        problem, cause = f"{type(error).__name__}: {first_line}", error
    else:
        missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint] if isinstance(checkpoint, dict) else "all"
        if not missing:
            return checkpoint
        problem, cause = f"it lacks the key(s) {missing} of a checkpoint of lejepa.train", None
    size = path.stat().st_size if path.exists() else 0
    raise CheckpointUnreadable(
        f"cannot resume from {path} ({size} bytes): {problem}. The file is truncated or corrupted (a full disk, "
        f"a copy cut short) or is not a checkpoint of this engine. Nothing was trained or overwritten. "
        f"To start the run afresh from step 0, move it aside (mv {path} {path}.corrupt) and rerun; "
        f"if you kept a copy of an earlier checkpoint of this run, put that copy at {path} instead "
        f"and rerun to resume from it."
    ) from cause


def kept_checkpoint_note(checkpoint_path) -> str:
    """The end of a NonFiniteLoss message: what the stopped run leaves on disk to resume from, and what to do."""
    checkpoint_path = Path(checkpoint_path)
    if not checkpoint_path.is_file():
        return (
            f"No checkpoint was written before this step ({checkpoint_path} does not exist), so there is nothing to "
            f"resume from: lower lr (or check the data), then rerun; the run starts from step 0."
        )
    return (
        f"The last good checkpoint is kept: {checkpoint_path}. Rerunning with the same settings resumes from it and "
        f"will most likely meet the same non-finite loss; change a training setting (e.g. a lower lr) to start afresh "
        f"(the checkpoint is then set aside as {checkpoint_path.with_name('checkpoint.stale.pt')})."
    )


def learning_rate(step: int, *, peak: float, warmup_steps: int, total_steps: int, final: float = 0.0) -> float:
    """Linear warm-up from peak / warmup_steps to peak, then cosine annealing to `final`."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return final + (peak - final) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class ResumableSampler(DistributedSampler):
    """DistributedSampler (order = permutation seeded by seed + epoch, shard rank::world_size)
    that yields (epoch, index) pairs, so each sample's augmentation can be seeded by
    (seed, epoch, index), and that can start after the first `skip` samples of the epoch."""

    def __init__(self, dataset, *, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.skip = 0

    def set_epoch(self, epoch: int, *, skip: int = 0) -> None:
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        indices = list(super().__iter__())[self.skip :]
        return iter([(self.epoch, index) for index in indices])

    def __len__(self) -> int:
        return self.num_samples - self.skip


class LeJEPANet(nn.Module):
    """Encoder + online probe in one module, so DDP sees one forward per step.

    forward(global views (Vg, B, 3, H, W), local views (Vl, B, 3, h, w)) ->
    global embeddings (Vg, B, K), all embeddings (V, B, K), probe logits (Vg * B, C),
    predictions (V, B, K): the encoder's predictor applied to every embedding (None without one).
    """

    def __init__(self, encoder: nn.Module, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.probe = nn.Linear(encoder.feature_dim, num_classes)

    def forward(self, global_views, local_views):
        n_global, batch = global_views.shape[:2]
        features, global_z = self.encoder(global_views.flatten(0, 1))  # (Vg * B, F), (Vg * B, K)
        embeddings = [global_z]
        if local_views.shape[0] > 0:  # one forward per resolution
            embeddings.append(self.encoder(local_views.flatten(0, 1))[1])  # (Vl * B, K)
        all_z = torch.cat(embeddings).view(-1, batch, global_z.shape[-1])  # (V, B, K)
        logits = self.probe(features.detach())  # the probe never trains the encoder
        predicted_z = None
        if self.encoder.predictor is not None:
            predicted_z = self.encoder.predictor(all_z.flatten(0, 1)).view_as(all_z)  # (V, B, K)
        return global_z.view(n_global, batch, -1), all_z, logits, predicted_z


def averaged_encoder(encoder: nn.Module) -> nn.Module:
    """The stochastic weight average's start: a frozen copy of the encoder (swa_decay)."""
    average = copy.deepcopy(encoder)
    for parameter in average.parameters():
        parameter.requires_grad_(False)
    return average


@torch.no_grad()
def update_average(average: nn.Module, encoder: nn.Module, *, decay: float) -> None:
    """average <- decay * average + (1 - decay) * encoder, parameter by parameter; buffers
    (BatchNorm running statistics) are copied from the encoder."""
    for averaged, current in zip(average.parameters(), encoder.parameters()):
        averaged.lerp_(current.detach(), 1.0 - decay)
    for averaged, current in zip(average.buffers(), encoder.buffers()):
        averaged.copy_(current)


@torch.no_grad()
def average_centres(average: nn.Module, global_views, local_views, *, centers: str) -> torch.Tensor:
    """The centre views' embeddings by the averaged encoder, without gradient: (Vc, B, K),
    the global views (centers "global") or every view ("all")."""
    batch = global_views.shape[1]
    embeddings = [average(global_views.flatten(0, 1))[1]]
    if centers == "all" and local_views.shape[0] > 0:
        embeddings.append(average(local_views.flatten(0, 1))[1])
    return torch.cat(embeddings).view(-1, batch, embeddings[0].shape[-1])


def rng_state() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_finite_weights(net: nn.Module, *, run: str, when: str, checkpoint_path: Path) -> None:
    """Stop before a checkpoint would save NaN or inf weights over the last good one."""
    if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
        raise NonFiniteLoss(f"run {run!r}: non-finite weights {when}. Stopped. {kept_checkpoint_note(checkpoint_path)}")


def global_mean(values: torch.Tensor, world_size: int) -> torch.Tensor:
    """Average a vector of per-process metrics over processes (identity on one process)."""
    if world_size > 1:
        values = values.clone()
        dist.all_reduce(values)
        values /= world_size
    return values


@torch.no_grad()
def online_eval_accuracy(net: LeJEPANet, loader, device, channels_last: bool) -> float:
    """Top-1 (%) of the online probe on a held-out split, backbone in eval mode."""
    was_training = net.training
    net.eval()
    correct = total = 0
    for images, labels in loader:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            features, _ = net.encoder(images)
            logits = net.probe(features)
        correct += (logits.argmax(1).cpu() == labels).sum().item()
        total += labels.numel()
    net.train(was_training)
    return 100.0 * correct / max(1, total)


# ---- setup: processes, data, model ---------------------------------------------------------


@dataclass
class Processes:
    """This process's place in the run: its rank among world_size processes (1 without
    torchrun) and its device."""

    world_size: int
    rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def use_cuda(self) -> bool:
        return self.device.type == "cuda"


def start_processes(config: dict) -> Processes:
    """Read torchrun's environment or, in tasks started by srun (lejepa.launch), Slurm's; pick
    the device; join the process group (DDP only): NCCL on GPUs, gloo on CPUs."""
    from lejepa.launch import distributed_environment

    world_size, rank, local_rank = distributed_environment()  # also sets MASTER_ADDR/PORT under srun
    use_cuda = resolve_device(config["device"]) == "cuda"
    # a task sees all GPUs of its node (cuda:local_rank) or, when Slurm binds GPUs to tasks, its own (cuda:0)
    device = torch.device(f"cuda:{local_rank % max(1, torch.cuda.device_count())}" if use_cuda else "cpu")
    if world_size > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    torch.set_num_threads(config["threads"])
    if config["batch_size"] % world_size:
        raise ValueError(f"batch_size {config['batch_size']} is not divisible by the {world_size} processes")
    return Processes(world_size=world_size, rank=rank, device=device)


def make_train_loader(
    config: dict, images: EncodedImages, processes: Processes
) -> tuple[DataLoader, ResumableSampler, int]:
    """Multi-crop views of the training images -> (loader, its sampler, steps per epoch)."""
    workers = resolve_workers(config["workers"], device=processes.device.type, threads=config["threads"])
    views = MultiCropViews(
        n_global=config["n_global"],
        n_local=config["n_local"],
        global_size=config["global_size"],
        local_size=config["local_size"],
        global_scale=tuple(config["global_scale"]),
        local_scale=tuple(config["local_scale"]),
    )
    train_set = SeededViews(images, views, seed=config["seed"])
    sampler = ResumableSampler(train_set, num_replicas=processes.world_size, rank=processes.rank, seed=config["seed"])
    batch_per_process = config["batch_size"] // processes.world_size
    loader = DataLoader(
        train_set,
        batch_size=batch_per_process,
        sampler=sampler,
        drop_last=True,
        collate_fn=collate_views,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=processes.use_cuda,
    )
    steps_per_epoch = sampler.num_samples // batch_per_process
    if config["max_steps_per_epoch"]:
        steps_per_epoch = min(steps_per_epoch, config["max_steps_per_epoch"])
    if steps_per_epoch < 1:
        raise ValueError(f"{config['data_dir']}: {len(images)} training images make no batch of {config['batch_size']}")
    return loader, sampler, steps_per_epoch


def make_eval_loader(config: dict, processes: Processes) -> DataLoader:
    """The held-out split the online probe is scored on after an epoch (eval transform)."""
    transform = eval_transform(config["global_size"])
    eval_images = EncodedImages(config["data_dir"], config["eval_split"], transform=transform)
    workers = resolve_workers(config["workers"], device=processes.device.type, threads=config["threads"])
    return DataLoader(eval_images, batch_size=256, num_workers=workers)


def make_model(
    config: dict, num_classes: int, processes: Processes, channels_last: bool
) -> tuple[LeJEPANet, nn.Module]:
    """-> (the net, what the step calls: the net, wrapped in DDP and compiled as configured)."""
    torch.manual_seed(config["seed"])
    net = LeJEPANet(encoder_from_config(config), num_classes=num_classes)
    if processes.world_size > 1:
        net = convert_sync_batchnorm(net, device_type=processes.device.type)
    net = net.to(processes.device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    model = net
    if processes.world_size > 1:
        model = DistributedDataParallel(net, device_ids=[processes.device.index] if processes.use_cuda else None)
    if config["compile"]:
        model = torch.compile(model)
    return net, model


def net_of(model: nn.Module) -> LeJEPANet:
    """The LeJEPANet inside what the step calls (DDP's .module, torch.compile's _orig_mod)."""
    while not isinstance(model, LeJEPANet):
        model = getattr(model, "_orig_mod", None) or model.module
    return model


def make_optimizer(net: LeJEPANet, config: dict) -> torch.optim.AdamW:
    """AdamW; the online probe has no weight decay."""
    return torch.optim.AdamW(
        [
            {"params": net.encoder.parameters(), "weight_decay": config["weight_decay"]},
            {"params": net.probe.parameters(), "weight_decay": 0.0},
        ],
        lr=config["lr"],
    )


# ---- the state a checkpoint holds besides the weights ---------------------------------------


TRAINING_STATE_KEYS = ("step", "epoch", "batch_in_epoch", "wall_s", "history", "epoch_sums")
EPOCH_SUMS = ("loss", "prediction", "sigreg", "correct", "seen", "images", "seconds")


@dataclass
class TrainingState:
    """Where the run is: global step, epoch, batches done in it; wall time of all sessions
    (evaluation and checkpoints included); metrics rows; the epoch's running sums."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    wall_s: float = 0.0
    history: list = field(default_factory=list)
    epoch_sums: dict = field(default_factory=lambda: dict.fromkeys(EPOCH_SUMS, 0.0))


def resume(
    checkpoint_path: Path,
    config: dict,
    net: LeJEPANet,
    optimizer,
    processes: Processes,
    swa_encoder: nn.Module | None = None,
) -> TrainingState:
    """Load weights, optimiser, RNG states and TrainingState from checkpoint.pt if it was made
    with these TRAINING_KEYS; set a checkpoint made with others aside. -> where to start."""
    state = TrainingState()
    if not checkpoint_path.exists():
        return state
    checkpoint = read_checkpoint(checkpoint_path)
    made_with = {**ADDED_TRAINING_KEYS, **checkpoint["config"]}  # a key added since: its old behaviour
    changed = {k for k in TRAINING_KEYS if made_with.get(k) != config[k]}
    if changed:
        stale = checkpoint_path.with_name("checkpoint.stale.pt")
        if processes.is_main:
            print(
                f"{checkpoint_path} was made with other settings ({sorted(changed)}): "
                f"starting afresh, old one moved to {stale}"
            )
        if processes.world_size > 1:
            dist.barrier()  # every process has read it before it moves
        if processes.is_main:
            os.replace(checkpoint_path, stale)
        return state
    net.encoder.load_state_dict(checkpoint["encoder"])
    net.probe.load_state_dict(checkpoint["probe"])
    if swa_encoder is not None:
        swa_encoder.load_state_dict(checkpoint["swa_encoder"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    state = TrainingState(**{key: checkpoint[key] for key in TRAINING_STATE_KEYS})
    set_rng_state(checkpoint["rng"])
    if processes.is_main:
        print(f"resumed {checkpoint_path}: epoch {state.epoch}, batch {state.batch_in_epoch}, step {state.step}")
    return state


def save_checkpoint(
    checkpoint_path: Path,
    config: dict,
    net: LeJEPANet,
    optimizer,
    state: TrainingState,
    swa_encoder: nn.Module | None = None,
) -> None:
    """checkpoint.pt, written atomically: everything `resume` needs to continue bit for bit."""
    checkpoint = {
        "config": config,
        "encoder": net.encoder.state_dict(),
        "probe": net.probe.state_dict(),
        "optimizer": optimizer.state_dict(),
        **{key: getattr(state, key) for key in TRAINING_STATE_KEYS},
        "rng": rng_state(),
    }
    if swa_encoder is not None:
        checkpoint["swa_encoder"] = swa_encoder.state_dict()
    with atomic_path(checkpoint_path) as tmp:
        torch.save(checkpoint, tmp)


def save_final(
    final_path: Path, config: dict, net: LeJEPANet, history: list, swa_encoder: nn.Module | None = None
) -> None:
    """final.pt marks the run finished (`lejepa.models.load_encoder` reads it). With swa_decay,
    its encoder is the averaged one and online_encoder the one the optimiser trained."""
    final = {"config": config, "encoder": net.encoder.state_dict(), "probe": net.probe.state_dict(), "history": history}
    if swa_encoder is not None:
        final = {**final, "encoder": swa_encoder.state_dict(), "online_encoder": net.encoder.state_dict()}
    with atomic_path(final_path) as tmp:
        torch.save(final, tmp)


# ---- one step, one epoch ---------------------------------------------------------------------


def train_step(
    model: nn.Module,
    loss_fn: LeJEPALoss,
    optimizer,
    batch,
    *,
    lr: float,
    config: dict,
    processes: Processes,
    state: TrainingState,
    checkpoint_path: Path,
    swa_encoder: nn.Module | None = None,
) -> tuple[list[float], float]:
    """One optimiser step on a batch of views -> ([loss, prediction, sigreg, online-probe loss],
    each averaged over processes; the online probe's right predictions, summed over processes).
    With swa_encoder, it makes the centres and is updated after the step."""
    device, world_size = processes.device, processes.world_size
    for group in optimizer.param_groups:
        group["lr"] = lr
    global_views, local_views, labels = (tensor.to(device, non_blocking=True) for tensor in batch)

    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=processes.use_cuda):
        global_z, all_z, logits, predicted_z = model(global_views, local_views)
        if swa_encoder is not None:
            centers_z = average_centres(swa_encoder, global_views, local_views, centers=config["centers"])
    global_z, all_z, logits = global_z.float(), all_z.float(), logits.float()
    if swa_encoder is not None:
        centers_z = centers_z.float()
    else:
        centers_z = all_z if config["centers"] == "all" else global_z
    # with a predictor, the prediction term takes every view's prediction (SIGReg its embedding)
    predicted = {} if predicted_z is None else {"predicted_z": predicted_z.float()}
    probe_labels = labels.repeat(config["n_global"])  # logits are ordered view-major
    probe_loss = F.cross_entropy(logits, probe_labels)

    finite = torch.isfinite(all_z).all().float()
    if world_size > 1:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    if finite.item() == 1.0:
        losses = loss_fn(centers_z, all_z, step=state.step, **predicted)
    else:  # the loss refuses non-finite embeddings: report what can be computed
        nan = torch.tensor(float("nan"), device=device)
        prediction = prediction_loss(global_z=centers_z, all_z=predicted.get("predicted_z", all_z))
        losses = {"loss": nan, "prediction": prediction, "sigreg": nan}
    terms = global_mean(
        torch.stack([losses["loss"], losses["prediction"], losses["sigreg"], probe_loss]).detach(), world_size
    ).tolist()
    if not all(math.isfinite(t) for t in terms):
        raise NonFiniteLoss(
            f"run {config['run']!r}: non-finite loss at step {state.step} "
            f"(epoch {state.epoch + 1}, batch {state.batch_in_epoch}): "
            f"loss={terms[0]}, prediction={terms[1]}, sigreg={terms[2]}, online_probe={terms[3]}, lr={lr:.3g}. "
            f"Stopped. {kept_checkpoint_note(checkpoint_path)}"
        )

    optimizer.zero_grad(set_to_none=True)
    (losses["loss"] + probe_loss).backward()
    optimizer.step()
    if swa_encoder is not None:
        update_average(swa_encoder, net_of(model).encoder, decay=config["swa_decay"])

    correct = (logits.argmax(1) == probe_labels).sum().float()
    if world_size > 1:
        dist.all_reduce(correct)
    return terms, correct.item()


def add_step(state: TrainingState, terms: list[float], correct: float, *, images: int, views_per_image: int,
             seconds: float) -> None:
    """Add one step's terms and counts (all processes together) to the epoch's running sums."""
    sums = state.epoch_sums
    sums["loss"] += terms[0]
    sums["prediction"] += terms[1]
    sums["sigreg"] += terms[2]
    sums["correct"] += correct
    sums["seen"] += images * views_per_image
    sums["images"] += images
    sums["seconds"] += seconds
    state.step += 1
    state.batch_in_epoch += 1


def metrics_row(state: TrainingState, *, lr: float) -> dict:
    """The epoch's row of metrics.csv from its running sums (online_eval_acc and wall_s are
    filled in after the evaluation)."""
    sums, n_batches = state.epoch_sums, max(1, state.batch_in_epoch)
    return {
        "epoch": state.epoch + 1,
        "step": state.step,
        "loss": sums["loss"] / n_batches,
        "prediction": sums["prediction"] / n_batches,
        "sigreg": sums["sigreg"] / n_batches,
        "online_acc": 100.0 * sums["correct"] / max(1, sums["seen"]),
        "online_eval_acc": float("nan"),
        "lr": lr,
        "img_per_s": sums["images"] / max(1e-9, sums["seconds"]),
        "wall_s": state.wall_s,
    }


def run_progress(run: str, step: int, total_steps: int, steps_at_start: int, session_s: float) -> str:
    """The epoch line's progress of the whole run: 'run <run>: step <step>/<total>, about <t> left'
    (t at this session's pace, its evaluations and checkpoints included)."""
    left = time_left(session_s, step - steps_at_start, total_steps - step)
    return f"run {run}: step {step}/{total_steps}, about {format_duration(left)} left"


# ---- TensorBoard (the setting tensorboard: true) --------------------------------------------


def tensorboard_writer_class():
    """torch.utils.tensorboard.SummaryWriter; without the tensorboard package, an ImportError
    that names the setting and says what to do."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ImportError(
            f"the setting tensorboard: true needs the tensorboard package, which cannot be imported ({error}); "
            f"install it (pip install tensorboard, or pip install -e '.[tensorboard]') or set tensorboard: false"
        ) from error
    return SummaryWriter


def open_tensorboard(summary_writer, out_dir: Path, state: TrainingState):
    """A writer of <out_dir>/tensorboard that drops the events of steps after the last metrics row
    the run holds (written before a kill, then not kept by the checkpoint it resumes from)."""
    purge_step = state.history[-1]["step"] + 1 if state.history else 0
    return summary_writer(log_dir=str(out_dir / "tensorboard"), purge_step=purge_step)


def write_tensorboard_row(writer, row: dict) -> None:
    """One metrics.csv row as scalars named by its columns, at global step row["step"] (NaN: none)."""
    for key, value in row.items():
        if key not in ("epoch", "step") and math.isfinite(value):
            writer.add_scalar(key, value, global_step=row["step"])
    writer.flush()


def main(config: dict) -> Path:
    config = check_config(config)
    out_dir = Path(config["out_dir"])
    checkpoint_path, metrics_path, final_path = out_dir / "checkpoint.pt", out_dir / "metrics.csv", out_dir / "final.pt"
    if final_path.exists():
        print(f"{final_path} exists: run {config['run']!r} is finished, nothing to do")
        return final_path
    summary_writer = tensorboard_writer_class() if config["tensorboard"] else None  # fails before any work

    processes = start_processes(config)
    channels_last = processes.use_cuda if config["channels_last"] == "auto" else bool(config["channels_last"])
    images = EncodedImages(config["data_dir"], "train")
    loader, sampler, steps_per_epoch = make_train_loader(config, images, processes)
    batch_per_process = config["batch_size"] // processes.world_size
    schedule = {
        "peak": config["lr"],
        "warmup_steps": round(config["warmup_epochs"] * steps_per_epoch),
        "total_steps": config["epochs"] * steps_per_epoch,
        "final": config["lr"] * config["final_lr_ratio"],
    }
    eval_loader = make_eval_loader(config, processes) if config["eval_split"] and processes.is_main else None
    net, model = make_model(config, len(images.classes), processes, channels_last)
    loss_fn = LeJEPALoss(
        lam=config["lam"], sigreg=SIGReg(num_slices=config["num_slices"], t_max=config["t_max"], knots=config["knots"])
    )
    optimizer = make_optimizer(net, config)
    swa_encoder = averaged_encoder(net.encoder) if config["swa_decay"] > 0 else None

    state = resume(checkpoint_path, config, net, optimizer, processes, swa_encoder)
    if processes.is_main:  # temporary files of checkpoint writes that a kill interrupted
        for leftover in out_dir.glob(f".{checkpoint_path.name}.*.tmp.pt"):
            leftover.unlink()
    tensorboard = open_tensorboard(summary_writer, out_dir, state) if summary_writer and processes.is_main else None

    session_start, wall_s_at_start = time.monotonic(), state.wall_s  # wall_s: all sessions' time, eval included
    steps_at_start = state.step  # the pace of this session's steps gives the run's time left
    model.train()
    last_checkpoint_time = time.monotonic()
    bar = tqdm(  # one bar for the whole run, so its remaining time is the run's
        total=schedule["total_steps"],
        initial=state.step,
        disable=not (processes.is_main and config["progress"]),
        dynamic_ncols=True,
    )
    while state.epoch < config["epochs"]:
        sampler.set_epoch(state.epoch, skip=state.batch_in_epoch * batch_per_process)
        bar.set_description(f"epoch {state.epoch + 1}/{config['epochs']}")
        step_start = time.monotonic()
        for batch in itertools.islice(loader, steps_per_epoch - state.batch_in_epoch):
            lr = learning_rate(state.step, **schedule)
            terms, correct = train_step(model, loss_fn, optimizer, batch, lr=lr, config=config, processes=processes,
                                        state=state, checkpoint_path=checkpoint_path,
                                        swa_encoder=swa_encoder)  # fmt: skip
            now = time.monotonic()
            images_in_step = batch[2].numel() * processes.world_size
            add_step(state, terms, correct, images=images_in_step, views_per_image=config["n_global"],
                     seconds=now - step_start)  # fmt: skip
            state.wall_s = wall_s_at_start + now - session_start
            step_start = now
            bar.update(1)
            bar.set_postfix(loss=f"{terms[0]:.4f}", sigreg=f"{terms[2]:.3f}", lr=f"{lr:.2e}")

            every_steps = config["checkpoint_every_steps"]
            due = (every_steps and state.step % every_steps == 0) or (now - last_checkpoint_time) > 60 * config[
                "checkpoint_minutes"
            ]
            if due and state.batch_in_epoch < steps_per_epoch:
                check_finite_weights(net, run=config["run"], when=f"after step {state.step - 1}",
                                     checkpoint_path=checkpoint_path)  # fmt: skip
                if processes.is_main:
                    save_checkpoint(checkpoint_path, config, net, optimizer, state, swa_encoder)
                last_checkpoint_time = time.monotonic()

        # end of epoch: metrics row, optional held-out probe accuracy, checkpoint
        row = metrics_row(state, lr=learning_rate(state.step - 1, **schedule))
        epoch_number = state.epoch + 1
        if eval_loader is not None and (epoch_number % config["eval_every"] == 0 or epoch_number == config["epochs"]):
            row["online_eval_acc"] = online_eval_accuracy(net, eval_loader, processes.device, channels_last)
        if processes.world_size > 1:
            dist.barrier()
        row["wall_s"] = state.wall_s = wall_s_at_start + time.monotonic() - session_start
        state.history.append(row)
        if tensorboard is not None:  # before the checkpoint: a resume purges a row it does not hold
            write_tensorboard_row(tensorboard, row)
        state.epoch, state.batch_in_epoch = epoch_number, 0
        state.epoch_sums = dict.fromkeys(state.epoch_sums, 0.0)
        check_finite_weights(net, run=config["run"], when=f"at the end of epoch {state.epoch}",
                             checkpoint_path=checkpoint_path)  # fmt: skip
        if processes.is_main:
            save_checkpoint(checkpoint_path, config, net, optimizer, state, swa_encoder)
        last_checkpoint_time = time.monotonic()
        if processes.is_main:
            write_csv(pd.DataFrame(state.history), metrics_path)
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
            print(run_progress(config["run"], state.step, schedule["total_steps"], steps_at_start,
                               time.monotonic() - session_start), flush=True)  # fmt: skip
    bar.close()
    if tensorboard is not None:
        tensorboard.close()

    if processes.is_main:
        write_csv(pd.DataFrame(state.history), metrics_path)
        save_final(final_path, config, net, state.history, swa_encoder)
    if processes.world_size > 1:
        dist.barrier()
        dist.destroy_process_group()
    return final_path


def cli(argv=None) -> Path:
    """python -m lejepa.train [--config FILE] [--set KEY=VALUE ...]: --help lists every setting and its
    default; a setting that is unknown, missing or wrong stops with a usage error naming it."""
    parser = build_parser(__doc__.split("\n")[0])
    arguments = parser.parse_args(argv)
    try:
        config = check_config(config_from_arguments(arguments))
    except ValueError as error:
        parser.error(str(error))
    try:
        return main(config)
    except (NonFiniteLoss, CheckpointUnreadable) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    cli()
