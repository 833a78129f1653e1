"""Figures 2, 3, 4, 5, 15, 17, 18: small runs checked against the paper's claims.

References are independent of the code under test: scipy's tests and kernel density,
closed forms (inverse-Wishart mean, ridge limit, Stein's lemma via brute-force OLS),
Fisher information by Monte Carlo, and quadrature on the sphere.
"""

import matplotlib
import matplotlib.pyplot
import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy import stats as scipy_stats
from scipy.special import sph_harm_y

from lejepa.synthetic import experiment, illustration, lemmas, sphere
from lejepa.synthetic.illustration import sample_x_shape

# Small versions of every figure (seconds in total).
SMALL = {
    "fig2": dict(n_samples=300, num_directions=5),
    "fig3": dict(n_train=100, n_resamples=20),
    "fig4": dict(n_draws=1, max_degree=12, n_polar=12, n_azimuth=24),
    "fig5": dict(n_samples=300, statistics=("epps_pulley", "cramer_von_mises")),
    "fig15": dict(empirical_alphas=(1.0,), n_directions=(32, 64, 128), n_fields=2, max_degree=20),
    "fig17": dict(n_resamples=50),
    "fig18": dict(train_sizes=(50,), n_resamples=10, n_test=500, n_ridge=4),
}

ANISOTROPIC = dict(anisotropic_eigenvalues=(1.9, 0.1), rotation_deg=45.0)


# ----------------------------------------------------------------------------------------
# The "X" sampler (also used by figures 6, 7, 20)
# ----------------------------------------------------------------------------------------


def test_x_shape_has_standard_normal_marginals_and_identity_covariance():
    x = sample_x_shape(20000, seed=3)
    assert x.shape == (20000, 2)
    for column in x.T:
        assert scipy_stats.kstest(column, "norm").pvalue > 0.01
    np.testing.assert_allclose(np.cov(x.T), np.eye(2), atol=0.05)
    np.testing.assert_allclose(np.abs(x[:, 0]), np.abs(x[:, 1]))  # all the mass on the two diagonals
    # ...so it is not jointly Gaussian: along (1, 1)/sqrt(2) half the mass sits at exactly 0
    along_arm = x @ np.array([1.0, 1.0]) / np.sqrt(2)
    assert abs(np.mean(np.abs(along_arm) < 1e-12) - 0.5) < 0.02
    assert scipy_stats.kstest(along_arm, "norm").pvalue < 1e-6


def test_x_shape_seed_and_generator():
    np.testing.assert_array_equal(sample_x_shape(50, seed=1), sample_x_shape(50, seed=1))
    np.testing.assert_array_equal(sample_x_shape(50, generator=np.random.default_rng(1)), sample_x_shape(50, seed=1))
    with pytest.raises(ValueError, match="n must be"):
        sample_x_shape(0)


# ----------------------------------------------------------------------------------------
# Figures 2 and 5
# ----------------------------------------------------------------------------------------


def test_fig5_statistics_peak_on_the_degenerate_directions():
    data = illustration.compute_fig5(n_samples=500, seed=1)
    statistics = data[data["part"] == "statistic"]
    assert statistics["angle_deg"].nunique() == 10
    for name, rows in statistics.groupby("statistic"):
        if name == "vcreg":  # the negative control: blind to the X (tests/test_synthetic_controls.py)
            continue
        peak_angle = rows.loc[rows["value"].idxmax(), "angle_deg"]
        assert peak_angle in (45.0, 135.0), name
        on_arms = rows[rows["angle_deg"].isin([45.0, 135.0])]["value"].min()
        off_arms = rows[(rows["angle_deg"] - 90).abs() <= 10]["value"].max()  # near 90 degrees: close to N(0, 1)
        assert on_arms > 3 * off_arms, name


def test_fig5_statistic_matches_scipy_cramer_von_mises_per_direction():
    data = illustration.compute_fig5(n_samples=400, statistics=("cramer_von_mises",), seed=2)
    points = data[data["part"] == "sample"][["x1", "x2"]].to_numpy()
    rows = data[data["part"] == "statistic"]
    for row in rows.itertuples():
        angle = np.deg2rad(row.angle_deg)
        projection = points @ np.array([np.cos(angle), np.sin(angle)])
        assert row.value == pytest.approx(scipy_stats.cramervonmises(projection, "norm").statistic, rel=1e-6)


def test_fig5_directions_cover_the_half_circle():
    directions, angles = illustration.half_circle_directions(10, first_direction_deg=45.0)
    np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1.0)
    np.testing.assert_allclose(np.sort(angles), np.sort((45 + 18 * np.arange(10)) % 180))


def test_fig2_kernel_density_matches_scipy_and_embedding_is_not_gaussian():
    samples = np.random.default_rng(0).standard_normal(300)
    grid = np.linspace(-4, 4, 81)
    reference = scipy_stats.gaussian_kde(samples, bw_method=0.2 / samples.std(ddof=1))(grid)
    np.testing.assert_allclose(illustration._density_on_grid(samples, grid, 0.2), reference, rtol=1e-10)

    data = illustration.compute_fig2(n_samples=500, num_directions=13, seed=0)
    embedding = data[data["part"] == "embedding"][["x1", "x2"]].to_numpy()
    assert np.sum(embedding.var(axis=0)) == pytest.approx(2.0)  # same energy as N(0, I_2)
    densities = data[data["part"] == "density"]
    for _, curve in densities.groupby("direction"):
        assert integrate.trapezoid(curve["density"], curve["t"]) == pytest.approx(1.0, abs=0.02)
    # every direction rejects normality (Epps-Pulley's 1% critical value is about 6)
    assert data[data["part"] == "statistic"]["value"].min() > 6


def test_unknown_statistic_is_rejected_by_name():
    with pytest.raises(ValueError, match="not_a_test"):
        illustration.compute_fig5(n_samples=50, statistics=("not_a_test",))


# ----------------------------------------------------------------------------------------
# Figures 3, 17, 18 (lemmas 1 and 2)
# ----------------------------------------------------------------------------------------


def test_embeddings_have_equal_total_variance_and_equal_task_difficulty():
    iso = lemmas.embedding_covariance("isotropic", **ANISOTROPIC)
    aniso = lemmas.embedding_covariance("anisotropic", **ANISOTROPIC)
    assert np.trace(iso) == pytest.approx(np.trace(aniso))
    np.testing.assert_allclose(np.linalg.eigvalsh(aniso), [0.1, 1.9])
    w = lemmas.TRUE_PARAMETER
    assert w @ iso @ w == pytest.approx(w @ aniso @ w)


def _fisher_covariance_trace(embedding, *, n_train, sharpness, rng):
    """Asymptotic tr Cov of the logistic MLE weights, (N I)^{-1} with I = E[p(1-p) x x^T], by Monte Carlo."""
    z = lemmas.sample_embeddings(rng.standard_normal((400_000, 2)), **ANISOTROPIC)[embedding]
    p = 1 / (1 + np.exp(-sharpness * z @ lemmas.TRUE_PARAMETER))
    design = np.column_stack([z, np.ones(len(z))])
    information = (design * (p * (1 - p))[:, None]).T @ design / len(z)
    return np.trace(np.linalg.inv(information)[:2, :2]) / n_train


def test_fig3_anisotropic_boundaries_vary_more_as_fisher_information_predicts():
    data = lemmas.compute_fig3(n_train=1000, n_resamples=400, seed=1, **ANISOTROPIC)
    fits = data[data["role"] == "fit"]
    rng = np.random.default_rng(5)
    traces = {}
    for embedding in lemmas.EMBEDDINGS:
        weights = fits[fits["embedding"] == embedding][["w1", "w2"]].to_numpy()
        traces[embedding] = np.trace(np.cov(weights.T))
        expected = _fisher_covariance_trace(embedding, n_train=1000, sharpness=3.0, rng=rng)
        assert traces[embedding] == pytest.approx(expected, rel=0.2), embedding
    assert traces["anisotropic"] > 2 * traces["isotropic"]
    spread = {e: np.std(lemmas.boundary_angles_deg(fits[fits["embedding"] == e])) for e in lemmas.EMBEDDINGS}
    assert spread["anisotropic"] > 1.5 * spread["isotropic"]


def test_logistic_fit_matches_scipy_minimiser():
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 2))
    labels = (rng.uniform(size=200) < 1 / (1 + np.exp(-(2 * x[:, 0] - x[:, 1] + 0.5)))).astype(float)
    design = np.column_stack([x, np.ones(200)])

    def negative_log_likelihood(theta):
        logits = design @ theta
        return np.sum(np.logaddexp(0, logits) - labels * logits)

    reference = minimize(negative_log_likelihood, np.zeros(3), method="BFGS", options=dict(gtol=1e-10)).x
    np.testing.assert_allclose(lemmas.logistic_fit(x, labels), reference, atol=1e-4)


def test_fig17_variance_matches_lemma2_closed_form():
    """OLS without intercept on a Gaussian design: E tr Var = s^2 tr(Sigma^-1) / (N - d - 1)."""
    n_train, noise_std = 100, 0.5
    data = lemmas.compute_fig17(n_train=n_train, n_resamples=3000, noise_std=noise_std, seed=2, **ANISOTROPIC)
    fits = data[data["role"] == "fit"]
    traces = {}
    for embedding in lemmas.EMBEDDINGS:
        for task in lemmas.TASKS:
            beta = fits[(fits["embedding"] == embedding) & (fits["task"] == task)][["beta1", "beta2"]].to_numpy()
            traces[embedding, task] = np.trace(np.cov(beta.T))
        covariance = lemmas.embedding_covariance(embedding, **ANISOTROPIC)
        closed_form = noise_std**2 * np.trace(np.linalg.inv(covariance)) / (n_train - 2 - 1)
        assert traces[embedding, "linear regression"] == pytest.approx(closed_form, rel=0.08), embedding
    for task in lemmas.TASKS:  # lemma 2's claim holds for every task
        assert traces["anisotropic", task] > 2 * traces["isotropic", task], task


def test_fig17_population_rows_match_brute_force_ols():
    data = lemmas.compute_fig17(n_resamples=2, seed=0, **ANISOTROPIC)
    population = data[data["role"] == "population"]
    rng = np.random.default_rng(7)
    big = lemmas.sample_embeddings(rng.standard_normal((400_000, 2)), **ANISOTROPIC)
    noise = rng.standard_normal(400_000)
    for row in population.itertuples():
        z = big[row.embedding]
        targets = lemmas.task_targets(row.task, z, noise, noise_std=0.5, frequency=1.0)
        brute_force = np.linalg.lstsq(z, targets, rcond=None)[0]
        np.testing.assert_allclose(
            [row.beta1, row.beta2], brute_force, atol=0.01, err_msg=f"{row.task} {row.embedding}"
        )


def test_ridge_bias_matches_lemma1_proof():
    """Paper B.1: with w along the smallest eigenvector q_d, ||bias|| = lam / (lam_d + lam) ||w||."""
    rng = np.random.default_rng(0)
    eigenvalues = np.array([1.9, 0.1])
    x = rng.standard_normal((200_000, 2))
    x = (
        (x - x.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(x.T, bias=True))).T * np.sqrt(eigenvalues)
    )  # exact sample covariance
    for lam in (0.01, 0.1, 1.0):
        for variances in (eigenvalues, np.full(2, eigenvalues.mean())):
            design = x / np.sqrt(eigenvalues) * np.sqrt(variances)
            smallest = np.eye(2)[np.argmin(variances)]
            beta = lemmas.ridge_fit(design, design @ smallest, ridge=lam)
            assert np.linalg.norm(beta - smallest) == pytest.approx(lam / (variances.min() + lam), rel=1e-6)


def test_fig18_anisotropy_adds_ridge_bias_as_lemma1_says():
    data = lemmas.compute_fig18(train_sizes=(1000,), n_resamples=30, n_test=4000, n_ridge=5, seed=3, **ANISOTROPIC)
    simulated = data[data["source"] == "simulation"]
    ridges = np.sort(simulated["ridge"].unique())
    for task in ("classification", "linear regression"):
        cosine = {
            embedding: simulated[
                (simulated["task"] == task) & (simulated["embedding"] == embedding) & (simulated["metric"] == "cosine")
            ]
            .sort_values("ridge")["mean"]
            .to_numpy()
            for embedding in lemmas.EMBEDDINGS
        }
        assert np.all(cosine["isotropic"] > 0.99), task
        # independent closed form: lim E[beta] = (Sigma + lam I)^{-1} Sigma w
        covariance = lemmas.embedding_covariance("anisotropic", **ANISOTROPIC)
        w = lemmas.TRUE_PARAMETER
        for lam, observed in zip(ridges, cosine["anisotropic"]):
            limit = np.linalg.solve(covariance + lam * np.eye(2), covariance @ w)
            assert observed == pytest.approx(limit @ w / np.linalg.norm(limit), abs=0.02), (task, lam)
        assert cosine["anisotropic"][-1] < 0.8
    accuracy = simulated[(simulated["metric"] == "accuracy")].pivot_table(
        index="ridge", columns="embedding", values="mean"
    )
    assert accuracy.loc[ridges[-1], "anisotropic"] < accuracy.loc[ridges[-1], "isotropic"] - 0.03
    assert accuracy.loc[ridges[0], "anisotropic"] == pytest.approx(accuracy.loc[ridges[0], "isotropic"], abs=0.02)


def test_lemma_settings_are_validated():
    with pytest.raises(ValueError, match="n_train"):
        lemmas.compute_fig3(n_train=0)
    with pytest.raises(ValueError, match="anisotropic_eigenvalues"):
        lemmas.compute_fig17(anisotropic_eigenvalues=(1.0, -1.0))
    with pytest.raises(ValueError, match="ridge_min"):
        lemmas.compute_fig18(ridge_min=1.0, ridge_max=0.1)


# ----------------------------------------------------------------------------------------
# Figures 4 and 15 (theorem 5)
# ----------------------------------------------------------------------------------------


def test_real_spherical_harmonics_are_orthonormal_and_match_scipy():
    nodes, weights = np.polynomial.legendre.leggauss(24)  # exact for the products of degree <= 8 below
    polar = np.arccos(nodes)
    azimuth = np.arange(48) * 2 * np.pi / 48
    polar_grid, azimuth_grid = np.meshgrid(polar, azimuth, indexing="ij")
    area = np.outer(weights, np.full(48, 2 * np.pi / 48)).ravel()
    harmonics = sphere.real_spherical_harmonics(4, polar_grid, azimuth_grid)
    np.testing.assert_allclose(harmonics.T @ (harmonics * area[:, None]), np.eye(25), atol=1e-10)
    # degree 2, order 1: sqrt(2) Re and sqrt(2) Im of scipy's complex harmonic
    y21 = sph_harm_y(2, 1, polar_grid.ravel(), azimuth_grid.ravel())
    np.testing.assert_allclose(harmonics[:, 4 + 1], np.sqrt(2) * y21.real, atol=1e-12)
    np.testing.assert_allclose(harmonics[:, 4 + 2], np.sqrt(2) * y21.imag, atol=1e-12)


def test_fig4_densities_are_normalised_and_alpha_controls_roughness():
    """alpha = 10: smooth blobs (power in low degrees, yet not a plain degree-1 gradient);
    alpha = 1: rough (much power beyond degree 10). Spectra of the log-densities by
    quadrature against scipy's complex harmonics."""
    n_polar, n_azimuth = 48, 96
    data = sphere.compute_fig4(n_draws=3, max_degree=32, n_polar=n_polar, n_azimuth=n_azimuth, seed=0)
    low_share, degree_one_share = {}, {}
    for (alpha, draw), rows in data.groupby(["alpha", "draw"]):
        polar, azimuth = rows["polar"].to_numpy(), rows["azimuth"].to_numpy()
        cell_area = np.sin(polar) * (np.pi / n_polar) * (2 * np.pi / n_azimuth)
        assert np.sum(rows["density"] * cell_area) == pytest.approx(1.0, rel=1e-9)
        assert (rows["density"] > 0).all()
        log_density = np.log(rows["density"].to_numpy())
        centred = log_density - np.sum(log_density * cell_area) / (4 * np.pi)
        total = np.sum(centred**2 * cell_area)
        power = [
            sum(abs(np.sum(centred * np.conj(sph_harm_y(degree, m, polar, azimuth)) * cell_area)) ** 2
                for m in range(-degree, degree + 1))
            for degree in range(1, 11)
        ]  # fmt: skip
        low_share.setdefault(alpha, []).append(sum(power) / total)
        degree_one_share.setdefault(alpha, []).append(power[0] / total)
    assert min(low_share[10.0]) > 0.9  # smooth: degrees 1-10 carry almost everything
    assert max(degree_one_share[10.0]) < 0.5  # but not a plain colour gradient (the old construction)
    assert max(low_share[1.0]) < 0.6  # rough: much of the power beyond degree 10
    # the mean degree the CSV records agrees with it
    mean_degree = data.groupby("alpha")["mean_degree"].mean()
    assert mean_degree[10.0] < 8 < 15 < mean_degree[1.0]


def test_fig15_empirical_rate_matches_theorem5_exponent():
    """On S^2 (D = 3) the squared reconstruction error falls as |A|^{-2 alpha / (D - 1)} = |A|^{-alpha}."""
    data = sphere.compute_fig15(
        empirical_alphas=(1.0, 2.0), n_directions=(32, 64, 128, 256, 512), n_fields=4, max_degree=40, seed=0
    )
    empirical = data[data["source"] == "empirical"]
    for alpha, rows in empirical.groupby("alpha"):
        log_n, log_error = np.log(rows["n_directions"]), np.log(rows["mean"])
        slope = scipy_stats.linregress(log_n, log_error).slope
        assert slope == pytest.approx(-2 * alpha / (3 - 1), abs=0.2 * alpha), alpha
    bound = data[data["source"] == "bound"]
    for alpha, rows in bound.groupby("alpha"):
        slope = scipy_stats.linregress(np.log(rows["n_directions"]), np.log(rows["mean"])).slope
        assert slope == pytest.approx(-2 * alpha / (128 - 1), rel=1e-9)
    # smoother functions are pinned down faster by the same directions
    at_most = empirical[empirical["n_directions"] == 512].set_index("alpha")["mean"]
    assert at_most[2.0] < at_most[1.0] / 10


def test_reconstruction_is_exact_for_band_limited_fields():
    rng = np.random.default_rng(0)
    coefficients = np.zeros((1, 121))  # max degree 10
    coefficients[0, :16] = rng.standard_normal(16)  # degree <= 3 only
    error = sphere.sphere_reconstruction_errors(coefficients, n_directions=64, oversampling=2.0)  # fits degree <= 4
    assert error[0] < 1e-20


# ----------------------------------------------------------------------------------------
# Every figure: deterministic, and drawable from its CSV alone
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("figure", sorted(SMALL))
def test_same_seed_same_numbers_and_figure_draws_from_csv(figure, tmp_path):
    compute, draw = experiment(figure)
    first = compute(**SMALL[figure], seed=4)
    pd.testing.assert_frame_equal(first, compute(**SMALL[figure], seed=4))
    assert not first.equals(compute(**SMALL[figure], seed=5))
    path = tmp_path / f"{figure}.csv"
    first.to_csv(path, index=False)
    fig = draw(pd.read_csv(path), **SMALL[figure])
    assert isinstance(fig, matplotlib.figure.Figure)
    if figure != "fig4":  # fig4 shows spheres without axes
        assert any(ax.get_xlabel() for ax in fig.axes)
    matplotlib.pyplot.close(fig)
