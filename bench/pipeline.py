"""Is the data pipeline the bottleneck of pretraining? Training images/s with the full
pipeline vs the model alone.

    python bench/pipeline.py [--data data/cifar10] [--steps 8] [--threads 2] [--workers auto] [--repeats 3]

Both measurements run the training step of lejepa.train (LeJEPANet forward on every
view, LeJEPALoss + online-probe loss, backward, AdamW step) with the `small` scale's
setting (config/pretrain.yaml): resnet18, projector 512-512-128, λ 0.02, 2 global 32-px + 4
local 16-px views, batch 256.

- model only: the same step on one fixed batch of random views, no data loading;
- pipeline:   the step fed by the real DataLoader (JPEG decode + multi-crop
              augmentation in --workers worker processes, or in the training process
              itself with 0 (auto on a CPU), SeededViews, collate).

Both after --warmup untimed steps, --repeats times in turn (one model, the loader started
again each time). On a CPU the workers share the cores with the model, so the ratio
measures how much of the machine the augmentation takes. The last line is
`ratio_vs_model_only: X`, the median over the repeats of pipeline / model only (goal
>= 0.9); the header names the commit.

The project's 2-core machine, idle: bench/results/pipeline.txt
(`python bench/pipeline.py | tee bench/results/pipeline.txt`). The machine is often shared;
the load average printed beside each repeat says when it was.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lejepa import LeJEPALoss, SIGReg
from lejepa.data import EncodedImages
from lejepa.devices import resolve_workers
from lejepa.models import Encoder
from lejepa.recipe import code_commit
from lejepa.train import LeJEPANet, ResumableSampler
from lejepa.views import MultiCropViews, SeededViews, collate_views

REPO = Path(__file__).resolve().parents[1]


def training_step(net, loss_fn, optimizer, global_views, local_views, labels, step):
    global_z, all_z, logits, _ = net(global_views, local_views)
    losses = loss_fn(global_z, all_z, step=step)
    probe_loss = F.cross_entropy(logits, labels.repeat(global_views.shape[0]))
    optimizer.zero_grad(set_to_none=True)
    (losses["loss"] + probe_loss).backward()
    optimizer.step()


def images_per_second(batches, net, loss_fn, optimizer, *, warmup, steps, batch_size):
    """Run warmup + steps training steps on the batches an iterator yields; images/s of the timed ones."""
    for step, (global_views, local_views, labels) in enumerate(batches):
        if step == warmup:
            start = time.perf_counter()
        training_step(net, loss_fn, optimizer, global_views, local_views, labels, step)
        if step + 1 == warmup + steps:
            return steps * batch_size / (time.perf_counter() - start)
    raise ValueError(f"the data ran out before {warmup + steps} steps; lower --steps or --batch-size")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_data = "data/cifar10" if os.path.exists("data/cifar10/meta.json") else "../shared/datasets/cifar10"
    parser.add_argument("--data", default=default_data, help="a prepared dataset folder (default: %(default)s)")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-local", type=int, default=4)
    parser.add_argument("--global-size", type=int, default=32)
    parser.add_argument("--local-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training process")
    parser.add_argument("--workers", default="auto", help="DataLoader workers, or auto (0 on a CPU)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--projector", default="512-512-128")
    parser.add_argument("--lam", type=float, default=0.02)
    args = parser.parse_args()
    workers = resolve_workers(args.workers if args.workers == "auto" else int(args.workers), device="cpu",
                              threads=args.threads)  # fmt: skip

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = EncodedImages(args.data, "train")
    views = MultiCropViews(n_global=2, n_local=args.n_local, global_size=args.global_size, local_size=args.local_size)
    net = LeJEPANet(Encoder(args.backbone, projector=args.projector), num_classes=len(images.classes)).train()
    loss_fn = LeJEPALoss(lam=args.lam, sigreg=SIGReg(num_slices=256))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=5e-2)
    print(
        f"# commit {code_commit(REPO)}: {args.backbone}, projector {args.projector}, batch {args.batch_size}, "
        f"2 x {args.global_size} px + {args.n_local} x {args.local_size} px views, "
        f"{args.threads} torch threads, {workers} workers ({args.workers}), {os.cpu_count()} CPUs, data {args.data}"
    )

    # augmentation alone, one process with one thread (as a DataLoader worker), before any worker exists
    dataset = SeededViews(images, views, seed=0)
    torch.set_num_threads(1)
    start = time.perf_counter()
    dataset.__getitems__([(1, i) for i in range(args.batch_size)])
    print(f"augmentation_alone_img_per_s (1 thread): {args.batch_size / (time.perf_counter() - start):.1f}")
    torch.set_num_threads(args.threads)

    fixed = collate_views(dataset.__getitems__([(0, i) for i in range(args.batch_size)]))
    sampler = ResumableSampler(dataset, num_replicas=1, rank=0, seed=0)
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, drop_last=True,
                        collate_fn=collate_views, num_workers=workers)  # fmt: skip
    timing = dict(warmup=args.warmup, steps=args.steps, batch_size=args.batch_size)
    ratios = []
    for repeat in range(1, args.repeats + 1):
        # model only: one real batch, decoded and augmented once, fed again and again
        repeated = (fixed for _ in range(args.warmup + args.steps))
        model_only = images_per_second(repeated, net, loss_fn, optimizer, **timing)
        pipeline = images_per_second(iter(loader), net, loss_fn, optimizer, **timing)
        ratios.append(pipeline / model_only)
        print(f"repeat {repeat}: model_only_img_per_s {model_only:.1f} pipeline_img_per_s {pipeline:.1f} "
              f"ratio {ratios[-1]:.3f} (load average {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip

    print(f"ratio_vs_model_only: {float(np.median(ratios)):.3f}")


if __name__ == "__main__":
    main()
