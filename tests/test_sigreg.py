"""SIGReg against a numpy re-implementation of its definition, plus
directions, determinism, gradients and validation."""

import numpy as np
import pytest
import scipy.special
import torch

from lejepa import SIGReg, stats
from lejepa.sigreg import TESTS, random_directions
from lejepa.timing import naive_sigreg


def gaussian_directions_numpy(dim, num_slices, step):
    """The documented recipe, written out: normalised torch.randn draws from a
    CPU generator seeded by step."""
    generator = torch.Generator().manual_seed(step)
    a = torch.randn(dim, num_slices, generator=generator, dtype=torch.float64).numpy()
    return a / np.linalg.norm(a, axis=0)


def test_sigreg_matches_definition(epps_pulley_numpy):
    z = np.random.default_rng(0).normal(size=(200, 12))
    sigreg = SIGReg(num_slices=32)
    value = sigreg(torch.tensor(z), step=7).item()
    expected = epps_pulley_numpy(z @ gaussian_directions_numpy(12, 32, 7)).mean()
    assert value == pytest.approx(expected, rel=1e-12)


def test_sigreg_matches_definition_float32(epps_pulley_numpy):
    z = np.random.default_rng(1).normal(size=(512, 64))
    value = SIGReg(num_slices=128, knots=33)(torch.tensor(z, dtype=torch.float32), step=3).item()
    expected = epps_pulley_numpy(z @ gaussian_directions_numpy(64, 128, 3), knots=33).mean()
    assert value == pytest.approx(expected, rel=1e-4)


def test_sobol_directions_follow_the_recipe():
    engine = torch.quasirandom.SobolEngine(dimension=6, scramble=True, seed=5)
    points = engine.draw(20, dtype=torch.float64).numpy()  # (M, D)
    expected = scipy.special.ndtri(points).T
    expected /= np.linalg.norm(expected, axis=0)
    np.testing.assert_allclose(
        random_directions(dim=6, num_slices=20, step=5, kind="sobol").numpy(), expected, rtol=1e-12
    )


@pytest.mark.parametrize("kind", ["gaussian", "sobol"])
def test_directions_are_unit_and_depend_only_on_step(kind):
    torch.manual_seed(0)
    a = random_directions(dim=9, num_slices=40, step=11, kind=kind)
    torch.manual_seed(123)
    torch.randn(100)
    b = random_directions(dim=9, num_slices=40, step=11, kind=kind)
    c = random_directions(dim=9, num_slices=40, step=12, kind=kind)
    assert a.shape == (9, 40)
    torch.testing.assert_close(a.norm(dim=0), torch.ones(40, dtype=torch.float64))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("directions", ["gaussian", "sobol"])
def test_same_step_same_value_under_different_global_seeds(directions):
    z = torch.randn(100, 16, generator=torch.Generator().manual_seed(0))
    sigreg = SIGReg(num_slices=20, directions=directions)
    torch.manual_seed(1)
    first = sigreg(z, step=4)
    torch.manual_seed(2)
    second = SIGReg(num_slices=20, directions=directions)(z, step=4)
    third = sigreg(z, step=5)
    assert torch.equal(first, second)
    assert first != third


def test_direction_cache_follows_dim_and_dtype(epps_pulley_numpy):
    sigreg = SIGReg(num_slices=8)
    z = np.random.default_rng(2).normal(size=(50, 10))
    for dim in (4, 10, 4):
        value = sigreg(torch.tensor(z[:, :dim]), step=1).item()
        assert value == pytest.approx(
            epps_pulley_numpy(z[:, :dim] @ gaussian_directions_numpy(dim, 8, 1)).mean(), rel=1e-12
        )
    value32 = sigreg(torch.tensor(z[:, :4], dtype=torch.float32), step=1).item()
    assert value32 == pytest.approx(
        epps_pulley_numpy(z[:, :4] @ gaussian_directions_numpy(4, 8, 1)).mean(), rel=1e-4
    )


@pytest.mark.parametrize("test", sorted(TESTS))
def test_views_are_averaged_with_shared_directions(test):
    z = torch.randn(3, 40, 6, dtype=torch.float64)
    sigreg = SIGReg(num_slices=10, test=test)
    per_view = torch.stack([sigreg(z[v], step=2) for v in range(3)]).mean()
    torch.testing.assert_close(sigreg(z, step=2), per_view, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("test", sorted(TESTS))
def test_each_test_is_the_mean_of_the_univariate_statistic(test):
    z = torch.randn(60, 5, dtype=torch.float64)
    a = random_directions(dim=5, num_slices=7, step=9)
    expected = getattr(stats, test)(z @ a).mean()
    torch.testing.assert_close(SIGReg(num_slices=7, test=test)(z, step=9), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("test", sorted(TESTS))
def test_gradcheck(test):
    z = torch.randn(14, 4, dtype=torch.float64, requires_grad=True)
    sigreg = SIGReg(num_slices=5, test=test, knots=9)
    assert torch.autograd.gradcheck(lambda v: sigreg(v, step=0), (z,))


@pytest.mark.parametrize("knots", [17, 256])
def test_gradient_matches_direct_autograd(knots):
    z = torch.randn(256, 32, generator=torch.Generator().manual_seed(3))
    sigreg = SIGReg(num_slices=64, knots=knots)
    directions = sigreg.directions_for(dim=32, step=1, device="cpu", dtype=torch.float64)
    reference_z = z.double().requires_grad_(True)
    naive_sigreg(reference_z, directions, knots=knots).backward()
    ours_z = z.clone().requires_grad_(True)
    sigreg(ours_z, step=1).backward()
    relative = (ours_z.grad.double() - reference_z.grad).norm() / reference_z.grad.norm()
    assert relative < 1e-5


def test_half_precision_is_computed_in_float32(epps_pulley_numpy):
    z = torch.randn(128, 16, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    sigreg = SIGReg(num_slices=32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = sigreg(z, step=2)
    assert value.dtype == torch.float32
    expected = epps_pulley_numpy(z.double().numpy() @ gaussian_directions_numpy(16, 32, 2)).mean()
    assert value.item() == pytest.approx(expected, rel=1e-4)


def test_large_on_non_gaussian_embeddings():
    generator = torch.Generator().manual_seed(4)
    sigreg = SIGReg(num_slices=64)
    isotropic = torch.randn(512, 32, generator=generator)
    collapsed = torch.randn(512, 1, generator=generator) * torch.ones(1, 32)  # rank one
    anisotropic = isotropic * torch.linspace(0.1, 3.0, 32)
    null_value = sigreg(isotropic, step=0).item()
    assert 0.7 < null_value < 1.5  # null mean 1.0526
    assert sigreg(collapsed, step=0).item() > 20 * null_value
    assert sigreg(anisotropic, step=0).item() > 10 * null_value


def test_validation():
    with pytest.raises(ValueError, match="test must be one of .*got 'kolmogorov'"):
        SIGReg(test="kolmogorov")
    with pytest.raises(ValueError, match="directions must be one of .*got 'uniform'"):
        SIGReg(directions="uniform")
    with pytest.raises(ValueError, match="num_slices must be an integer >= 1, got 0"):
        SIGReg(num_slices=0)
    with pytest.raises(ValueError, match="knots must be an integer >= 2"):
        SIGReg(knots=1)
    sigreg = SIGReg(num_slices=4)
    with pytest.raises(ValueError, match=r"z must have shape \(N, D\) or \(V, N, D\), got shape \(5,\)"):
        sigreg(torch.randn(5), step=0)
    with pytest.raises(ValueError, match=r"z needs at least N=2 samples, got shape \(1, 8\)"):
        sigreg(torch.randn(1, 8), step=0)
    with pytest.raises(ValueError, match=r"z contains non-finite values"):
        sigreg(torch.full((4, 3), float("nan")), step=0)
    with pytest.raises(TypeError):
        sigreg(torch.randn(4, 3))  # step is required and keyword-only


def test_a_callable_test_gives_the_value_of_the_named_test_it_reimplements():
    def cramer_von_mises_by_hand(projections):
        """W^2 = 1/(12N) + sum_i (Phi(x_(i)) - (2i - 1)/(2N))^2 per column, Phi through erf."""
        n = projections.shape[0]
        cdf = 0.5 * (1 + torch.erf(torch.sort(projections, dim=0).values / np.sqrt(2)))
        ranks = torch.arange(1, n + 1, dtype=projections.dtype)[:, None]
        return 1 / (12 * n) + ((cdf - (2 * ranks - 1) / (2 * n)) ** 2).sum(0)

    generator = torch.Generator().manual_seed(0)
    for shape in ((64, 16), (3, 64, 16)):  # one view, three views
        z = torch.randn(*shape, generator=generator, dtype=torch.float64)
        named_z, callable_z = z.clone().requires_grad_(), z.clone().requires_grad_()
        named = SIGReg(num_slices=32, test="cramer_von_mises")(named_z, step=5)
        mine = SIGReg(num_slices=32, test=cramer_von_mises_by_hand)(callable_z, step=5)
        assert mine.item() == pytest.approx(named.item(), rel=1e-12)
        named.backward()
        mine.backward()
        torch.testing.assert_close(callable_z.grad, named_z.grad, rtol=1e-10, atol=1e-12)
    assert "test=cramer_von_mises_by_hand" in repr(SIGReg(test=cramer_von_mises_by_hand))
    with pytest.raises(ValueError, match="or a function"):
        SIGReg(test="kolmogorov")
