"""Is the data pipeline the bottleneck of pretraining? Training images/s with the full
pipeline vs the model alone.

    python bench/pipeline.py [--data data/cifar10] [--steps 8] [--threads 2] [--workers 1]

Both measurements run the training step of lejepa.train (LeJEPANet forward on every
view, LeJEPALoss + online-probe loss, backward, AdamW step) with the `small` scale's
setting: resnet18, 2 global 32-px + 4 local 16-px views, batch 256.

- model only: the same step on one fixed batch of random views, no data loading;
- pipeline:   the step fed by the real DataLoader (JPEG decode + multi-crop
              augmentation in --workers worker processes, SeededViews, collate).

Both after --warmup untimed steps. On a CPU the workers share the cores with the
model, so the ratio measures how much of the machine the augmentation takes. The
last line is `ratio_vs_model_only: X` (pipeline / model only; goal >= 0.85).

Measured with `taskset -c 0,1` (2 dedicated cores of the GPU machine's CPU), batch 256:
  per-view torchvision v2 pipeline (before):  ratio 0.62 (2 workers), 0.52 (1 worker)
  batched views (lejepa.views, now):          ratio 0.90 (2 workers), 1.00 (1 worker)
model only ~110 img/s there. The 2-core machine of the project is shared, so its
numbers swing with the other jobs; run this on an otherwise idle machine.
"""

import argparse
import os
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lejepa import LeJEPALoss, SIGReg
from lejepa.data import EncodedImages
from lejepa.models import Encoder
from lejepa.train import LeJEPANet, ResumableSampler
from lejepa.views import MultiCropViews, SeededViews, collate_views


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
    parser.add_argument("--workers", type=int, default=1, help="DataLoader worker processes (small scale: 1)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = EncodedImages(args.data, "train")
    views = MultiCropViews(n_global=2, n_local=args.n_local, global_size=args.global_size, local_size=args.local_size)
    net = LeJEPANet(Encoder(args.backbone, projector="2048-2048-128"), num_classes=len(images.classes)).train()
    loss_fn = LeJEPALoss(lam=0.05, sigreg=SIGReg(num_slices=256))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=5e-2)
    print(
        f"{args.backbone}, batch {args.batch_size}, "
        f"2 x {args.global_size} px + {args.n_local} x {args.local_size} px views, "
        f"{args.threads} torch threads, {args.workers} workers, {os.cpu_count()} CPUs, data {args.data}"
    )

    # augmentation alone, one process with one thread (as a DataLoader worker), before any worker exists
    dataset = SeededViews(images, views, seed=0)
    torch.set_num_threads(1)
    start = time.perf_counter()
    dataset.__getitems__([(1, i) for i in range(args.batch_size)])
    print(f"augmentation_alone_img_per_s (1 thread): {args.batch_size / (time.perf_counter() - start):.1f}")
    torch.set_num_threads(args.threads)

    # model only: one real batch, decoded and augmented once, fed again and again
    fixed = collate_views(dataset.__getitems__([(0, i) for i in range(args.batch_size)]))
    repeated = (fixed for _ in range(args.warmup + args.steps))
    model_only = images_per_second(
        repeated, net, loss_fn, optimizer, warmup=args.warmup, steps=args.steps, batch_size=args.batch_size
    )
    print(f"model_only_img_per_s: {model_only:.1f}")

    sampler = ResumableSampler(dataset, num_replicas=1, rank=0, seed=0)
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, drop_last=True,
                        collate_fn=collate_views, num_workers=args.workers)  # fmt: skip
    pipeline = images_per_second(
        iter(loader), net, loss_fn, optimizer, warmup=args.warmup, steps=args.steps, batch_size=args.batch_size
    )
    print(f"pipeline_img_per_s: {pipeline:.1f}")

    print(f"ratio_vs_model_only: {pipeline / model_only:.3f}")


if __name__ == "__main__":
    main()
