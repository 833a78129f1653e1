"""lejepa.stats against independent references: scipy, closed forms written
in float64 numpy, brute-force double sums and numerical integration."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
from scipy import integrate, special

from lejepa import stats

N_POWER = 512

UNIVARIATE = {
    "epps_pulley": stats.epps_pulley,
    "cramer_von_mises": stats.cramer_von_mises,
    "anderson_darling": stats.anderson_darling,
    "watson": stats.watson,
    "jarque_bera": stats.jarque_bera,
    "moments": stats.moments,
    "shapiro_wilk": stats.shapiro_wilk,
}


def x_shaped_2d(n, rng):
    """The paper's "X" density: standard normal marginals, identity covariance,
    all mass on the two diagonals y = x and y = -x."""
    t = rng.standard_normal(n)
    sign = rng.choice([-1.0, 1.0], n)
    return np.stack([t, sign * t], axis=1)


def samples_1d(n, rng):
    """Named 1-D samples: the null and three alternatives."""
    return {
        "gaussian": rng.standard_normal(n),
        "bimodal": np.concatenate([rng.normal(-2, 0.5, n // 2), rng.normal(2, 0.5, n - n // 2)]),
        "uniform": rng.uniform(-math.sqrt(3), math.sqrt(3), n),  # mean 0, variance 1
        # the X projected on its degenerate diagonal: half zeros, half N(0, 2)
        "x_shaped": x_shaped_2d(n, rng) @ np.array([1.0, 1.0]) / math.sqrt(2),
    }


def as_tensor(x):
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


# --------------------------------------------------------------------------
# Epps-Pulley
# --------------------------------------------------------------------------


def epps_pulley_by_quad(x, t_max):
    """N * integral_{-T}^{T} |ecf(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt by adaptive quadrature."""

    def integrand(t):
        real = np.mean(np.cos(t * x)) - np.exp(-t * t / 2)
        imag = np.mean(np.sin(t * x))
        return (real**2 + imag**2) * np.exp(-t * t / 2)

    value, _ = integrate.quad(integrand, -t_max, t_max, limit=200, epsabs=1e-13, epsrel=1e-12)
    return len(x) * value


@pytest.mark.parametrize("name", ["gaussian", "bimodal", "uniform", "x_shaped"])
def test_epps_pulley_matches_exact_integral(name):
    # measured relative errors of the 17-knot rule at N=512, T=3:
    # gaussian 1.7e-3, bimodal 1.8e-5, uniform 4.9e-4, x_shaped 1.0e-3;
    # halving the knot spacing divides them by ~4 (trapezoid, second order)
    x = samples_1d(512, np.random.default_rng(0))[name]
    exact = epps_pulley_by_quad(x, t_max=3.0)
    error_17 = abs(stats.epps_pulley(as_tensor(x)).item() - exact) / exact
    error_33 = abs(stats.epps_pulley(as_tensor(x), knots=33).item() - exact) / exact
    assert error_17 < 3e-3
    assert error_33 < error_17 / 3
    # the official domain of the paper's text, [-5, 5], with many knots
    exact_5 = epps_pulley_by_quad(x, t_max=5.0)
    assert stats.epps_pulley(as_tensor(x), t_max=5.0, knots=129).item() == pytest.approx(exact_5, rel=1e-3)


def test_epps_pulley_official_trapezoid_value():
    # the official convention written out in numpy: weights 2*dt inside, dt at both ends
    x = np.random.default_rng(1).standard_normal((50, 3))
    t = np.linspace(0, 3, 17)
    dt = 3 / 16
    weights = np.full(17, 2 * dt)
    weights[[0, -1]] = dt
    phi = np.exp(-(t**2) / 2)
    angles = x[:, :, None] * t
    err = (np.cos(angles).mean(0) - phi) ** 2 + np.sin(angles).mean(0) ** 2  # (M, K)
    expected = 50 * (err @ (weights * phi))
    np.testing.assert_allclose(stats.epps_pulley(as_tensor(x)).numpy(), expected, rtol=1e-12)


def test_epps_pulley_null_mean_closed_form():
    # expected value under N(0,1) is integral (1 - e^{-t^2}) e^{-t^2/2} dt over [-T, T]
    value, _ = integrate.quad(lambda t: (1 - np.exp(-t * t)) * np.exp(-t * t / 2), -3, 3)
    assert stats.epps_pulley_null_mean(t_max=3.0) == pytest.approx(value, rel=1e-12)
    assert stats.epps_pulley_null_mean(t_max=3.0) == pytest.approx(1.0526, abs=1e-4)


@pytest.mark.parametrize("n, columns", [(16, 6000), (1024, 1500)])
def test_epps_pulley_null_mean_does_not_grow_with_n(n, columns):
    generator = torch.Generator().manual_seed(n)
    x = torch.randn(n, columns, generator=generator, dtype=torch.float64)
    values = stats.epps_pulley(x)
    standard_error = values.std().item() / math.sqrt(columns)
    # E[T] = sum_k w_k (1 - exp(-t_k^2)) exactly for the trapezoid, within 1e-3 of the integral
    assert abs(values.mean().item() - 1.0526) < 4 * standard_error + 2e-3


# --------------------------------------------------------------------------
# The characteristic-function sums (recurrence + closed-form backward)
# --------------------------------------------------------------------------


def use_knot_blocks(monkeypatch, knots_per_block):
    """Force the recurrence's layout: B knots per step (B > 1 is the GPU path)
    and small row blocks (the CPU path's cache blocking)."""
    monkeypatch.setattr(stats, "CPU_BLOCK_ENTRIES", 64)
    monkeypatch.setattr(stats, "_knots_per_block", lambda x, knots: min(knots, knots_per_block))


@pytest.mark.parametrize("knots_per_block", [1, 3, 16])
@pytest.mark.parametrize("knots", [2, 17, 64, 65, 256])
def test_ecf_sums_match_direct_cos_sin(knots, knots_per_block, monkeypatch):
    use_knot_blocks(monkeypatch, knots_per_block)
    x = np.random.default_rng(knots).normal(0, 2, (70, 5))
    t = np.linspace(0, 3, knots)
    cos_sums, sin_sums = stats.ecf_sums(as_tensor(x), t_max=3.0, knots=knots)
    np.testing.assert_allclose(cos_sums.numpy(), np.cos(x[:, :, None] * t).sum(0).T, atol=1e-11)
    np.testing.assert_allclose(sin_sums.numpy(), np.sin(x[:, :, None] * t).sum(0).T, atol=1e-11)


@pytest.mark.parametrize("knots_per_block", [1, 16])
def test_ecf_sums_float32_as_accurate_as_direct_at_256_knots(knots_per_block, monkeypatch):
    monkeypatch.setattr(stats, "_knots_per_block", lambda x, knots: knots_per_block)
    x = np.random.default_rng(2).normal(0, 2, (2048, 16))
    t = np.linspace(0, 3, 256)
    exact_cos = np.cos(x[:, :, None] * t).sum(0).T
    exact_sin = np.sin(x[:, :, None] * t).sum(0).T
    x32 = torch.tensor(x, dtype=torch.float32)
    ours_cos, ours_sin = stats.ecf_sums(x32, t_max=3.0, knots=256)
    direct_cos, direct_sin = stats.ecf_sums_naive(x32, t=torch.tensor(t, dtype=torch.float32))
    ours_error = max(
        np.abs(ours_cos.double().numpy() - exact_cos).max(),
        np.abs(ours_sin.double().numpy() - exact_sin).max(),
    )
    direct_error = max(
        np.abs(direct_cos.double().numpy() - exact_cos).max(),
        np.abs(direct_sin.double().numpy() - exact_sin).max(),
    )
    assert ours_error / 2048 < 1e-6
    assert ours_error < 3 * direct_error


@pytest.mark.parametrize("knots_per_block", [1, 3, 16])
@pytest.mark.parametrize("knots", [2, 17, 70])
def test_ecf_sums_gradcheck(knots, knots_per_block, monkeypatch):
    use_knot_blocks(monkeypatch, knots_per_block)
    x = torch.randn(40, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: stats.ecf_sums(v, t_max=3.0, knots=knots), (x,))


# --------------------------------------------------------------------------
# EDF statistics
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gaussian", "bimodal", "uniform", "x_shaped"])
def test_cramer_von_mises_matches_scipy(name):
    x = samples_1d(300, np.random.default_rng(3))[name]
    expected = scipy.stats.cramervonmises(x, "norm").statistic
    assert stats.cramer_von_mises(as_tensor(x)).item() == pytest.approx(expected, rel=1e-10)


def anderson_darling_numpy(x):
    x = np.sort(x)
    n = len(x)
    i = np.arange(1, n + 1)
    return -n - np.sum((2 * i - 1) * (scipy.stats.norm.logcdf(x) + scipy.stats.norm.logsf(x[::-1]))) / n


def watson_numpy(x):
    n = len(x)
    u = np.sort(scipy.stats.norm.cdf(x))
    i = np.arange(1, n + 1)
    w2 = np.sum((u - (2 * i - 1) / (2 * n)) ** 2) + 1 / (12 * n)
    return w2 - n * (u.mean() - 0.5) ** 2


@pytest.mark.parametrize("name", ["gaussian", "bimodal", "uniform", "x_shaped"])
def test_anderson_darling_and_watson_match_closed_forms(name):
    x = samples_1d(300, np.random.default_rng(4))[name]
    assert stats.anderson_darling(as_tensor(x)).item() == pytest.approx(anderson_darling_numpy(x), rel=1e-10)
    assert stats.watson(as_tensor(x)).item() == pytest.approx(watson_numpy(x), rel=1e-10)


def test_anderson_darling_exact_in_far_tails():
    # log Phi(-9) ~ -43.6: a naive log(ndtr) is fine in float64 but the tail
    # approximation used elsewhere is off by 0.2 at -5; float32 must stay finite too
    x = np.array([-9.0, -5.0, -1.0, 0.0, 0.5, 2.0, 6.0, 9.0])
    assert stats.anderson_darling(as_tensor(x)).item() == pytest.approx(anderson_darling_numpy(x), rel=1e-10)
    value32 = stats.anderson_darling(torch.tensor(x, dtype=torch.float32)).item()
    assert value32 == pytest.approx(anderson_darling_numpy(x), rel=1e-4)


@pytest.mark.parametrize("n", [3, 4, 5, 6, 11, 50, 512])
def test_shapiro_wilk_w_matches_scipy(n):
    x = np.random.default_rng(n).standard_normal(n) * 2 + 1
    w_scipy = scipy.stats.shapiro(x).statistic
    w_ours = stats.shapiro_wilk_w(as_tensor(x)[:, None]).item()
    # scipy's swilk works partly in single precision
    assert w_ours == pytest.approx(w_scipy, abs=2e-5)
    assert stats.shapiro_wilk(as_tensor(x)).item() == pytest.approx(n * (1 - w_ours), rel=1e-12)


def test_shapiro_wilk_w_matches_scipy_on_alternatives():
    for x in samples_1d(200, np.random.default_rng(5)).values():
        w_ours = stats.shapiro_wilk_w(as_tensor(x)[:, None]).item()
        assert w_ours == pytest.approx(scipy.stats.shapiro(x).statistic, abs=2e-5)


# --------------------------------------------------------------------------
# Moment statistics
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gaussian", "bimodal", "uniform", "x_shaped"])
def test_jarque_bera_matches_numpy(name):
    x = samples_1d(300, np.random.default_rng(6))[name] * 1.3 + 0.2
    n = len(x)
    skewness = scipy.stats.skew(x)
    kurtosis = scipy.stats.kurtosis(x, fisher=False)
    expected = (
        n * x.mean() ** 2 + n * (x.var() - 1) ** 2 / 2 + n / 6 * (skewness**2 + (kurtosis - 3) ** 2 / 4)
    )
    assert stats.jarque_bera(as_tensor(x)).item() == pytest.approx(expected, rel=1e-10)
    # the classical Jarque-Bera is the last part
    classical = scipy.stats.jarque_bera(x).statistic
    assert stats.jarque_bera(as_tensor(x)).item() - n * x.mean() ** 2 - n * (
        x.var() - 1
    ) ** 2 / 2 == pytest.approx(classical, rel=1e-9)


@pytest.mark.parametrize("k", [1, 2, 4, 6])
def test_moments_matches_numpy(k):
    # He_j against N(0,1): mean 0, variance j! (closed form), checked by numerical integration
    for j in range(1, 5):
        mean, _ = integrate.quad(
            lambda v: special.eval_hermitenorm(j, v) * scipy.stats.norm.pdf(v), -np.inf, np.inf
        )
        second, _ = integrate.quad(
            lambda v: special.eval_hermitenorm(j, v) ** 2 * scipy.stats.norm.pdf(v), -np.inf, np.inf
        )
        assert abs(mean) < 1e-9 and second == pytest.approx(math.factorial(j), rel=1e-9)
    x = samples_1d(300, np.random.default_rng(7))["x_shaped"]
    n = len(x)
    expected = sum(
        n * np.mean(special.eval_hermitenorm(j, x)) ** 2 / math.factorial(j) for j in range(1, k + 1)
    )
    assert stats.moments(as_tensor(x), k=k).item() == pytest.approx(expected, rel=1e-10)


# --------------------------------------------------------------------------
# Multivariate
# --------------------------------------------------------------------------


def bhep_brute_force(X, beta):
    """The BHEP closed form as explicit O(N^2) double sums in numpy."""
    n, d = X.shape
    b2 = beta**2
    pair = 0.0
    for j in range(n):
        for k in range(n):
            pair += np.exp(-b2 / 2 * np.sum((X[j] - X[k]) ** 2))
    cross = sum(np.exp(-b2 * np.sum(X[j] ** 2) / (2 * (1 + b2))) for j in range(n))
    return pair / n - 2 * (1 + b2) ** (-d / 2) * cross + n * (1 + 2 * b2) ** (-d / 2)


@pytest.mark.parametrize("d, beta", [(1, 0.1), (2, 0.5), (5, 1.0), (3, 2.0)])
def test_bhep_matches_brute_force(d, beta):
    X = np.random.default_rng(d).normal(0.3, 1.2, (40, d))
    assert stats.bhep(as_tensor(X), beta=beta).item() == pytest.approx(bhep_brute_force(X, beta), rel=1e-10)


def test_bhep_is_the_weighted_characteristic_function_distance_in_1d():
    # N * integral |ecf - e^{-t^2/2}|^2 phi_beta(t) dt, phi_beta the N(0, beta^2) density
    x = samples_1d(100, np.random.default_rng(8))["x_shaped"]
    beta = 0.7

    def integrand(t):
        real = np.mean(np.cos(t * x)) - np.exp(-t * t / 2)
        imag = np.mean(np.sin(t * x))
        return (real**2 + imag**2) * scipy.stats.norm.pdf(t, scale=beta)

    value, _ = integrate.quad(integrand, -12 * beta, 12 * beta, limit=200, epsabs=1e-13)
    assert stats.bhep(as_tensor(x)[:, None], beta=beta).item() == pytest.approx(100 * value, rel=1e-8)


def test_henze_zirkler_is_bhep_with_its_beta():
    X = np.random.default_rng(9).standard_normal((30, 4))
    beta = (1 / math.sqrt(2)) * ((2 * 4 + 1) * 30 / 4) ** (1 / (4 + 4))
    assert stats.henze_zirkler(as_tensor(X)).item() == pytest.approx(bhep_brute_force(X, beta), rel=1e-10)


# --------------------------------------------------------------------------
# Gradients, batching, power, validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(UNIVARIATE))
def test_gradcheck_univariate(name):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(UNIVARIATE[name], (x,))
    assert torch.autograd.gradcheck(UNIVARIATE[name], (x[:, 0].detach().requires_grad_(),))


@pytest.mark.parametrize("statistic", [stats.henze_zirkler, lambda X: stats.bhep(X, beta=0.5)])
def test_gradcheck_multivariate(statistic):
    X = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(statistic, (X,))


@pytest.mark.parametrize("name", sorted(UNIVARIATE))
def test_columns_are_independent_tests(name):
    x = torch.randn(64, 4, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5, 1.0])
    batched = UNIVARIATE[name](x)
    assert batched.shape == (4,)
    one_by_one = torch.stack([UNIVARIATE[name](x[:, j]) for j in range(4)])
    torch.testing.assert_close(batched, one_by_one, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(UNIVARIATE))
def test_power_at_n_512(name):
    rng = np.random.default_rng(10)
    statistic = UNIVARIATE[name]
    null_values = statistic(as_tensor(rng.standard_normal((N_POWER, 200)))).numpy()
    threshold = np.quantile(null_values, 0.99)
    alternatives = samples_1d(N_POWER, rng)
    assert statistic(as_tensor(alternatives["gaussian"])).item() < threshold
    for alternative in ["uniform", "x_shaped"]:
        value = statistic(as_tensor(alternatives[alternative])).item()
        assert value > 1.5 * threshold, f"{name} on {alternative}: {value:.3g} vs null 99% {threshold:.3g}"


@pytest.mark.parametrize("statistic", [stats.henze_zirkler, lambda X: stats.bhep(X, beta=1.0)])
def test_multivariate_power_on_x_shape(statistic):
    rng = np.random.default_rng(11)
    null_values = [statistic(as_tensor(rng.standard_normal((N_POWER, 2)))).item() for _ in range(20)]
    x_value = statistic(as_tensor(x_shaped_2d(N_POWER, rng))).item()
    assert x_value > 3 * max(null_values)


@pytest.mark.parametrize("name", sorted(UNIVARIATE))
def test_univariate_validation(name):
    statistic = UNIVARIATE[name]
    with pytest.raises(ValueError, match=r"x must have shape \(N,\) or \(N, M\), got shape \(2, 3, 4\)"):
        statistic(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"x needs at least N=\d samples, got shape \(1, 3\)"):
        statistic(torch.randn(1, 3))
    with pytest.raises(ValueError, match=r"x contains non-finite values .* shape \(5,\)"):
        statistic(torch.tensor([0.0, 1.0, float("nan"), 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"x must be a floating point tensor"):
        statistic(torch.arange(5))


def test_parameter_validation():
    x = torch.randn(10)
    with pytest.raises(ValueError, match="knots must be an integer >= 2, got 1"):
        stats.epps_pulley(x, knots=1)
    with pytest.raises(ValueError, match="t_max must be a positive finite number, got -1"):
        stats.epps_pulley(x, t_max=-1.0)
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        stats.moments(x, k=0)
    with pytest.raises(ValueError, match="beta must be a positive finite number"):
        stats.bhep(torch.randn(10, 2), beta=0.0)
    with pytest.raises(ValueError, match=r"X must have shape \(N, D\), got shape \(10,\)"):
        stats.henze_zirkler(x)
    with pytest.raises(ValueError, match=r"X contains non-finite values"):
        stats.bhep(torch.tensor([[0.0, 1.0], [float("inf"), 0.0]]))
