"""LeJEPALoss against a numpy computation of the paper's loss."""

import numpy as np
import pytest
import torch

from lejepa import LeJEPALoss, SIGReg
from lejepa.sigreg import random_directions


def lejepa_loss_numpy(global_z, all_z, directions, lam, epps_pulley_numpy):
    """Loops over views, samples and dims, as the paper writes it (with the
    squared norm divided by K, the official code's mean)."""
    v_count, n, k = all_z.shape
    centers = global_z.mean(axis=0)
    prediction = 0.0
    for v in range(v_count):
        for i in range(n):
            prediction += np.sum((all_z[v, i] - centers[i]) ** 2) / k
    prediction /= v_count * n
    sigreg = np.mean([epps_pulley_numpy(all_z[v] @ directions).mean() for v in range(v_count)])
    return (1 - lam) * prediction + lam * sigreg, prediction, sigreg


@pytest.mark.parametrize("lam", [0.0, 0.05, 0.5, 1.0])
def test_loss_matches_numpy(lam, epps_pulley_numpy):
    rng = np.random.default_rng(0)
    all_z = rng.normal(size=(5, 64, 8))
    all_z[:2] += 0.3  # the first two are the global views
    global_z = all_z[:2]
    loss_fn = LeJEPALoss(lam=lam, sigreg=SIGReg(num_slices=16))
    out = loss_fn(torch.tensor(global_z), torch.tensor(all_z), step=3)
    directions = random_directions(dim=8, num_slices=16, step=3).numpy()
    loss, prediction, sigreg = lejepa_loss_numpy(global_z, all_z, directions, lam, epps_pulley_numpy)
    assert out["loss"].item() == pytest.approx(loss, rel=1e-12)
    assert out["prediction"].item() == pytest.approx(prediction, rel=1e-12)
    assert out["sigreg"].item() == pytest.approx(sigreg, rel=1e-12)


def test_no_stop_gradient_on_the_global_views():
    # lam = 0: L = 1/(V N K) sum_v ||z_v - mu||^2, mu = mean of global views, so
    # dL/d global_z[g] = -2 / (Vg V N K) sum_v (z_v - mu)  (through mu only)
    rng = np.random.default_rng(1)
    global_np = rng.normal(size=(2, 10, 4))
    all_np = rng.normal(size=(6, 10, 4))
    global_z = torch.tensor(global_np, requires_grad=True)
    all_z = torch.tensor(all_np, requires_grad=True)
    LeJEPALoss(lam=0.0)(global_z, all_z, step=0)["loss"].backward()
    mu = global_np.mean(0)
    expected_global = -2 / (2 * 6 * 10 * 4) * (all_np - mu).sum(0)
    np.testing.assert_allclose(
        global_z.grad.numpy(), np.broadcast_to(expected_global, (2, 10, 4)), rtol=1e-12
    )
    np.testing.assert_allclose(all_z.grad.numpy(), 2 / (6 * 10 * 4) * (all_np - mu), rtol=1e-12)


def test_default_sigreg_and_gradcheck():
    loss_fn = LeJEPALoss()
    assert loss_fn.lam == 0.05
    assert isinstance(loss_fn.sigreg, SIGReg) and loss_fn.sigreg.num_slices == 256
    z = torch.randn(3, 12, 4, dtype=torch.float64, requires_grad=True)
    small = LeJEPALoss(lam=0.3, sigreg=SIGReg(num_slices=5, knots=9))
    assert torch.autograd.gradcheck(lambda v: small(v[:2], v, step=1)["loss"], (z,))


def test_validation():
    with pytest.raises(ValueError, match=r"lam must be a number in \[0, 1\], got 1.5"):
        LeJEPALoss(lam=1.5)
    loss_fn = LeJEPALoss(sigreg=SIGReg(num_slices=4))
    z = torch.randn(4, 8, 3)
    with pytest.raises(
        ValueError, match=r"must agree on N and K, got global_z \(2, 7, 3\) and all_z \(4, 8, 3\)"
    ):
        loss_fn(torch.randn(2, 7, 3), z, step=0)
    with pytest.raises(ValueError, match=r"global_z must have shape \(Vg, N, K\), got shape \(8, 3\)"):
        loss_fn(z[0], z, step=0)
    with pytest.raises(ValueError, match=r"all_z contains non-finite values"):
        loss_fn(z[:2], z * float("inf"), step=0)
