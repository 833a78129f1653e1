"""The CUDA code paths, skipped without a GPU (CI has none; run on a GPU machine with
`pytest tests/test_cuda.py`): SIGReg's Epps-Pulley paths on the GPU against brute force on
the CPU in float64, the materialised path's float32 value with TF32 switched on against the
numpy definition, the LeJEPA loss and its gradients on the GPU against the CPU's, and SIGReg
inside a one-process NCCL group against no group."""

import numpy as np
import pytest
import torch
import torch.distributed as dist
from conftest import value_and_gradient

from lejepa import LeJEPALoss, SIGReg
from lejepa.sigreg import PATHS, random_directions
from lejepa.timing import naive_sigreg

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def skewed_embeddings(n, dim, seed):
    z = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z[:, 0] = z[:, 0] ** 2  # far from the null, so value and gradient are not near zero
    return z


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n, num_slices, knots", [(256, 64, 17), (100, 7, 5), (64, 24, 256)])
def test_paths_on_cuda_equal_brute_force_on_cpu(path, n, num_slices, knots):
    z = skewed_embeddings(n, 6, seed=n + knots)
    directions = random_directions(dim=6, num_slices=num_slices, step=2)
    expected = value_and_gradient(lambda v: naive_sigreg(v, directions, knots=knots), z)
    sigreg = SIGReg(num_slices=num_slices, knots=knots, path=path)
    value, gradient = value_and_gradient(lambda v: sigreg(v, step=2), z.cuda())
    torch.testing.assert_close(value, expected[0], rtol=1e-12, atol=0)
    torch.testing.assert_close(gradient, expected[1], rtol=1e-10, atol=1e-12)


def test_float32_with_tf32_on_stays_within_float32_resolution(epps_pulley_numpy):
    z = np.random.default_rng(4).normal(size=(4096, 128))
    directions = random_directions(dim=128, num_slices=256, step=3).double().numpy()
    expected = epps_pulley_numpy(z @ directions).mean()
    matmul = torch.backends.cuda.matmul
    allow_tf32 = matmul.allow_tf32
    matmul.allow_tf32 = True  # what a training script sets for speed; SIGReg must not inherit it
    try:
        values = {
            path: SIGReg(num_slices=256, path=path)(torch.tensor(z, dtype=torch.float32).cuda(), step=3).item()
            for path in PATHS
        }
    finally:
        matmul.allow_tf32 = allow_tf32
    for path, value in values.items():
        assert value == pytest.approx(expected, rel=1e-4), path


def test_loss_and_gradients_on_cuda_equal_cpu():
    generator = torch.Generator().manual_seed(0)
    all_z = torch.randn(6, 128, 32, generator=generator, dtype=torch.float64)  # (V, N, K)
    loss_fn = LeJEPALoss(lam=0.05)

    def loss_and_gradient(z):
        z = z.clone().requires_grad_(True)
        terms = loss_fn(z[:2], z, step=5)  # the first 2 views are the global ones
        (gradient,) = torch.autograd.grad(terms["loss"], z)
        return [terms[name].detach().cpu() for name in ("loss", "prediction", "sigreg")], gradient.cpu()

    expected_terms, expected_gradient = loss_and_gradient(all_z)
    terms, gradient = loss_and_gradient(all_z.cuda())
    torch.testing.assert_close(terms, expected_terms, rtol=1e-12, atol=0)
    torch.testing.assert_close(gradient, expected_gradient, rtol=1e-10, atol=1e-14)


def test_sigreg_in_a_one_process_nccl_group_equals_no_group(tmp_path):
    """The NCCL collectives SIGReg calls (all-reduce of the sums, all-gather of the rows)
    run on CUDA tensors; with one rank they must leave value and gradient unchanged. Two
    ranks need two GPUs (NCCL refuses two ranks on one device)."""
    z = skewed_embeddings(200, 8, seed=1).cuda()
    sigreg = SIGReg(num_slices=32, knots=17)
    expected = value_and_gradient(lambda v: sigreg(v, step=4), z)
    dist.init_process_group("nccl", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        for path in PATHS:
            in_group = value_and_gradient(lambda v: SIGReg(num_slices=32, knots=17, path=path)(v, step=4), z)
            torch.testing.assert_close(in_group, expected, rtol=1e-12, atol=1e-14)
    finally:
        dist.destroy_process_group()
