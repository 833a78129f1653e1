"""SIGReg and the LeJEPA loss under DDP (2 gloo processes, float64) equal one
process holding the whole batch: the statistic on every rank, the loss
averaged over ranks and the layer's gradients after DDP's averaging."""

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
