"""Figures 5, 6, 16 and 20, table 6: the negative control (VCReg), Henze-Zirkler without
underflow, the shape measure the captions quote, and the paper's Algorithm 1.

Each piece is checked against an independent reference: numpy / scipy formulas, float64
autograd, a closed form, or an exact property (an affine map keeps an X an X).
"""

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy import stats as scipy_stats
from scipy.spatial.distance import pdist

from lejepa import stats
from lejepa.synthetic.illustration import compute_fig5, sample_x_shape, summarise_fig5, vcreg
from lejepa.synthetic.optimise import (
    ARM_DISTANCE_GAUSSIAN,
    henze_zirkler_log_scale,
    henze_zirkler_stable,
    log10_initial_gradient,
    make_objective,
    optimise_samples,
    scaled_henze_zirkler,
    x_arm_distance,
    x_shape_in_gaussian,
)
from lejepa.synthetic.quadrature import algorithm1_knots
from lejepa.timing import algorithm1_sigreg

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # these optimisations are many tiny ops


# ---------------------------------------------------------------- VCReg


def test_vcreg_is_squared_mean_plus_squared_std_error_per_column():
    x = np.random.default_rng(0).normal(0.3, 1.7, size=(50, 4))
    expected = x.mean(0) ** 2 + (x.std(0, ddof=1) - 1) ** 2
    np.testing.assert_allclose(vcreg(torch.from_numpy(x)).numpy(), expected, rtol=1e-12)


def test_vcreg_is_blind_to_the_x_while_epps_pulley_peaks_on_its_arms():
    data = compute_fig5(n_samples=2000, statistics=("vcreg", "epps_pulley"), seed=3)
    values = data[data["part"] == "statistic"].pivot(index="angle_deg", columns="statistic", values="value")
    # every direction of the X has mean 0 and variance 1: VCReg only sees sampling noise
    assert values["vcreg"].max() < 0.01
    assert values["epps_pulley"].idxmax() in (45.0, 135.0)
    summary = summarise_fig5(data)
    assert summary["statistics peaking on an arm"] in ("1", "2")


def test_plain_gradient_descent_on_vcreg_is_an_affine_map_of_the_samples():
    # With N > D + 1 an affine fit final = [initial, 1] @ W is not trivially exact.
    initial = x_shape_in_gaussian(num_samples=200, dim=12, seed=0, offset=1.0).double()
    objective = make_objective("vcreg", num_directions=5)
    design = torch.cat([initial, torch.ones(len(initial), 1, dtype=initial.dtype)], 1)

    def affine_residual(final):
        weights = torch.linalg.lstsq(design, final).solution
        return float((design @ weights - final).abs().max())

    plain = optimise_samples(initial, objective, steps=50, lr=30.0, optimizer="sgd")
    assert float((plain - initial).abs().max()) > 0.1  # it moved
    assert affine_residual(plain) < 1e-9
    # so the X stays an X: the arm distance of dims 1-2 stays small
    assert x_arm_distance(plain[:, 0].numpy(), plain[:, 1].numpy()) < 0.15
    adam = optimise_samples(initial, objective, steps=50, lr=0.1)
    assert affine_residual(adam) > 1e-2  # Adam's per-coordinate steps are not one affine map


# ---------------------------------------------------------------- the X's shape measure


def test_arm_distance_is_zero_on_the_x_and_matches_the_gaussian_closed_form():
    x = sample_x_shape(1000, seed=0)
    x -= x.mean(0)  # around its centre the X is exactly on its arms... up to the sample mean
    exact = np.random.default_rng(1).standard_normal(1000)
    assert x_arm_distance(exact, exact) == pytest.approx(0.0, abs=1e-12)
    assert x_arm_distance(exact, -exact) == pytest.approx(0.0, abs=1e-12)
    reference, _ = integrate.quad(lambda t: (2 * scipy_stats.norm.sf(t)) ** 2, 0, np.inf)
    assert ARM_DISTANCE_GAUSSIAN == pytest.approx(reference, rel=1e-10)
    gaussian = np.random.default_rng(2).standard_normal((200_000, 2))
    assert x_arm_distance(gaussian[:, 0], gaussian[:, 1]) == pytest.approx(reference, rel=0.01)
    # scale and shift do not change it
    assert x_arm_distance(3 * gaussian[:5000, 0] + 1, 3 * gaussian[:5000, 1] - 2) == pytest.approx(
        x_arm_distance(gaussian[:5000, 0], gaussian[:5000, 1]), rel=1e-9
    )


# ---------------------------------------------------------------- Henze-Zirkler


def numpy_henze_zirkler(x):
    """Henze-Zirkler (BHEP with its bandwidth) of x (N, D) against N(0, I), from scipy distances."""
    n, d = x.shape
    beta2 = (((2 * d + 1) * n / 4) ** (1 / (d + 4)) / math.sqrt(2)) ** 2
    pairs = (n + 2 * np.exp(-beta2 / 2 * pdist(x, "sqeuclidean")).sum()) / n
    cross = 2 * (1 + beta2) ** (-d / 2) * np.exp(-beta2 * (x**2).sum(1) / (2 * (1 + beta2))).sum()
    return pairs - cross + n * (1 + 2 * beta2) ** (-d / 2)


def test_stable_henze_zirkler_matches_a_numpy_reference_where_nothing_underflows():
    x = x_shape_in_gaussian(num_samples=60, dim=5, seed=1, offset=1.0)
    reference = numpy_henze_zirkler(x.double().numpy())
    assert float(henze_zirkler_stable(x)) == pytest.approx(reference, rel=1e-10)
    assert float(stats.henze_zirkler(x.double())) == pytest.approx(reference, rel=1e-10)


def numpy_henze_zirkler_gradient(x):
    """d HZ / d x (N, D) in float64 from the closed form, term by term:
    pair: -(2 beta^2 / N) sum_k exp(-beta^2 |x_i - x_k|^2 / 2) (x_i - x_k);
    cross: + 2 (1 + beta^2)^(-D/2) beta^2 / (1 + beta^2) exp(-beta^2 |x_i|^2 / (2 (1 + beta^2))) x_i."""
    n, d = x.shape
    beta2 = (((2 * d + 1) * n / 4) ** (1 / (d + 4)) / math.sqrt(2)) ** 2
    differences = x[:, None, :] - x[None, :, :]  # (N, N, D)
    pair_weights = np.exp(-beta2 / 2 * (differences**2).sum(-1))
    np.fill_diagonal(pair_weights, 0.0)
    pair = -(2 * beta2 / n) * np.einsum("ik,ikd->id", pair_weights, differences)
    cross_weights = np.exp(-beta2 * (x**2).sum(1) / (2 * (1 + beta2)))
    cross = 2 * (1 + beta2) ** (-d / 2) * beta2 / (1 + beta2) * cross_weights[:, None] * x
    return pair + cross


def test_henze_zirkler_gradient_matches_the_closed_form_where_float32_gives_zero():
    x = x_shape_in_gaussian(num_samples=100, dim=1024, seed=0, offset=1.0)
    float32 = x.clone().requires_grad_(True)
    stats.henze_zirkler(float32).backward()
    assert float(float32.grad.abs().max()) == 0.0  # what "samples did not move" used to show
    reference = numpy_henze_zirkler_gradient(x.double().numpy())  # about 1e-162: a normal float64
    assert 0 < np.abs(reference).max() < 1e-100
    scaled = x.double().clone().requires_grad_(True)
    log_scale = henze_zirkler_log_scale(scaled)
    scaled_henze_zirkler(scaled, log_scale=log_scale).backward()
    np.testing.assert_allclose((scaled.grad * math.exp(log_scale)).numpy(), reference, rtol=1e-8, atol=0)
    assert log10_initial_gradient("henze_zirkler", x, num_directions=1) == pytest.approx(
        math.log10(np.abs(reference).max()), abs=1e-8
    )


def test_henze_zirkler_gradient_matches_the_closed_form_at_a_small_size():
    x = x_shape_in_gaussian(num_samples=30, dim=4, seed=2, offset=1.0).double()
    scaled = x.clone().requires_grad_(True)
    log_scale = henze_zirkler_log_scale(scaled)
    scaled_henze_zirkler(scaled, log_scale=log_scale).backward()
    np.testing.assert_allclose(
        (scaled.grad * math.exp(log_scale)).numpy(), numpy_henze_zirkler_gradient(x.numpy()), rtol=1e-9, atol=1e-15
    )


# ---------------------------------------------------------------- Algorithm 1


def test_algorithm1_matches_a_numpy_trapezoid_and_our_rule_with_half_the_knots():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((40, 6))
    directions = rng.standard_normal((6, 3))
    directions /= np.linalg.norm(directions, axis=0)
    t = np.linspace(-5, 5, 17)
    projections = z @ directions  # (N, M)
    ecf = np.exp(1j * projections[:, :, None] * t).mean(0)  # (M, K)
    err = np.abs(ecf - np.exp(-t**2 / 2)) ** 2 * np.exp(-t**2 / 2)
    reference = (len(z) * np.trapezoid(err, t, axis=1)).mean()
    ours = algorithm1_sigreg(torch.from_numpy(z), torch.from_numpy(directions), t_max=5.0, knots=17)
    assert float(ours) == pytest.approx(reference, rel=1e-12)
    assert algorithm1_knots(17) == 9
    same_rule = stats.epps_pulley(torch.from_numpy(projections), t_max=5.0, knots=algorithm1_knots(17)).mean()
    assert float(same_rule) == pytest.approx(reference, rel=1e-10)
    with pytest.raises(ValueError, match="odd"):
        algorithm1_knots(16)


def test_table6_times_algorithm1_beside_ours_and_renders_both():
    from lejepa import tables
    from lejepa.timing import summarise_table6, time_sigreg

    measurements = []
    for n, m, knots in ((64, 8, 16), (512, 512, 16)):
        ours = time_sigreg(n=n, m=m, knots=knots, d=16, repeats=2, warmup=0, impl="ours")
        baseline = time_sigreg(n=n, m=m, knots=knots, d=16, repeats=2, warmup=0, impl="algorithm1")
        assert baseline["peak_mem_mb"] > 0 and baseline["mean_ms"] > 0
        measurements.append(
            {"n": n, "m": m, "knots": knots, "d": 16, **ours, **{f"baseline_{k}": v for k, v in baseline.items()}}
        )
    frame = tables.table6_frame(measurements, device="cpu: test", impl="ours", repeats=2, commit="abc1234",
                                torch_version=torch.__version__)  # fmt: skip
    frame["baseline"] = "algorithm1"
    for key in ("mean_ms", "std_ms", "peak_mem_mb"):
        frame[f"baseline_{key}"] = [row[f"baseline_{key}"] for row in measurements]
    frame["command"] = "snakemake --cores 1 tables/table6.csv"
    markdown = tables.table6_markdown(frame)
    assert "| algorithm1 mean (ms) |" in markdown and "`snakemake --cores 1 tables/table6.csv`" in markdown
    row = markdown.splitlines()[-1].split("|")
    assert float(row[10]) == pytest.approx(frame.mean_ms.iloc[-1] / frame.baseline_mean_ms.iloc[-1], abs=0.006)
    summary = summarise_table6(frame)
    assert summary["baseline"] == "algorithm1" and summary["commit"] == "abc1234"


def test_time_grid_skips_a_baseline_row_that_would_not_fit_in_memory():
    from lejepa.timing import materialised_mb, time_grid

    small = {"n": 64, "m": 8, "knots": 4, "d": 8}
    large = {"n": 1024, "m": 1024, "knots": 16, "d": 8}  # 32 * 1024 * 1024 * 16 bytes = 512 MiB
    assert materialised_mb(**large) == pytest.approx(512.0)
    rows = time_grid([small, large], baseline="algorithm1", repeats=2, warmup=0, max_mem_mb=100)
    assert rows[0]["baseline_mean_ms"] > 0
    assert math.isnan(rows[1]["baseline_mean_ms"]) and rows[1]["mean_ms"] > 0
