"""Figures 6, 16, 7 (optimising samples on a statistic) and 20 (Epps-Pulley quadrature).

Small versions of each experiment; the claims are checked against independent
references: scipy's Shapiro-Wilk test, a closed form of the Epps-Pulley integral,
and comparisons between the two arms of an experiment.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from lejepa.synthetic import experiment
from lejepa.synthetic.optimise import STATISTICS, compute_fig6, compute_fig7, compute_fig16, x_arm_distance
from lejepa.synthetic.quadrature import DISTRIBUTIONS, compute_fig20, exact_epps_pulley, sample_projections

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # these optimisations are many tiny ops


def shapiro_p_values(frame):
    """Shapiro-Wilk p-values of x1, x2 and of the projections on both diagonals."""
    x1, x2 = frame["x1"].to_numpy(), frame["x2"].to_numpy()
    projections = (x1, x2, (x1 + x2) / math.sqrt(2), (x1 - x2) / math.sqrt(2))
    return [scipy_stats.shapiro(p).pvalue for p in projections]


# ------------------------------------------------------------------------------------
# Figure 6 / 16
# ------------------------------------------------------------------------------------


def test_fig6_epps_pulley_unfolds_the_x_into_a_gaussian_blob():
    # The paper's size (N = 100, D = 1024, M = 10 fresh directions per step).
    data = compute_fig6(statistics=["epps_pulley"])
    before = data[data["stage"] == "before"]
    after = data[data["stage"] == "after"]
    # Before: the marginals are normal but the diagonal projections are not
    # (half the mass sits exactly at 0).
    p_before = shapiro_p_values(before)
    assert min(p_before[2:]) < 1e-5
    # After: every projection is compatible with a normal sample.
    p_after = shapiro_p_values(after)
    assert min(p_after) > 0.01, p_after
    # and the points left the two diagonals through the X's centre (the official +1 offset):
    # |x1 - 1| = |x2 - 1| no longer holds.
    assert np.all(np.isclose((before["x1"] - 1).abs(), (before["x2"] - 1).abs()))
    assert np.median(np.abs(after["x1"].abs() - after["x2"].abs())) > 0.3
    assert x_arm_distance(before["x1"], before["x2"]) < 0.15 < 0.35 < x_arm_distance(after["x1"], after["x2"])


def test_fig6_long_form_columns_and_stages():
    data = compute_fig6(num_samples=20, dim=8, steps=3, statistics=list(STATISTICS))
    assert list(data.columns) == ["statistic", "stage", "sample", "x1", "x2", "x3", "x4", "log10_initial_gradient"]
    assert set(data["stage"]) == {"before", "after"}
    assert list(dict.fromkeys(data["statistic"])) == list(STATISTICS)
    assert len(data) == 2 * 20 * len(STATISTICS)
    # the same initial X before every statistic; the X, offset by +1, has x2 - 1 = +-(x1 - 1)
    befores = [g.reset_index(drop=True) for _, g in data[data["stage"] == "before"].groupby("statistic")]
    per_statistic = ["statistic", "log10_initial_gradient"]
    for frame in befores[1:]:
        pd.testing.assert_frame_equal(frame.drop(columns=per_statistic), befores[0].drop(columns=per_statistic))
    assert np.allclose((befores[0]["x1"] - 1).abs(), (befores[0]["x2"] - 1).abs())


def test_fig6_is_deterministic_for_a_fixed_seed():
    settings = dict(num_samples=16, dim=6, steps=5, statistics=["epps_pulley", "anderson_darling", "bhep"])
    first, second = compute_fig6(**settings, seed=3), compute_fig6(**settings, seed=3)
    pd.testing.assert_frame_equal(first, second)
    other = compute_fig6(**settings, seed=4)
    assert not np.allclose(first["x1"], other["x1"])


def test_fig16_has_one_block_per_case():
    cases = [{"dim": 4, "num_directions": 2}, {"dim": 6, "num_directions": 3}]
    data = compute_fig16(num_samples=10, cases=cases, steps=2, statistics=["epps_pulley", "moments"])
    assert list(data.columns) == ["D", "M", "statistic", "stage", "sample", "x1", "x2", "x3", "x4",
                                  "log10_initial_gradient"]  # fmt: skip
    assert sorted(set(zip(data["D"], data["M"]))) == [(4, 2), (6, 3)]
    assert len(data) == 2 * 2 * 2 * 10


def test_bad_settings_name_the_culprit():
    with pytest.raises(ValueError, match="not_a_test"):
        compute_fig6(statistics=["not_a_test"], steps=1, dim=4, num_samples=4)
    with pytest.raises(ValueError, match="steps"):
        compute_fig6(steps=0)
    with pytest.raises(ValueError, match="cases"):
        compute_fig16(cases=[{"dim": 4}], steps=1)
    with pytest.raises(ValueError, match="laplace"):
        compute_fig20(distributions=["laplace"])


# ------------------------------------------------------------------------------------
# Figure 7
# ------------------------------------------------------------------------------------


def test_fig7_resampling_16_directions_beats_a_fixed_set_16_times_larger():
    data = compute_fig7(
        sizes=[{"num_samples": 64, "dim": 64}],
        steps=200,
        resampled_directions=[16],
        fixed_directions=[16, 256],
        evaluation_directions=500,
    )
    final = data.set_index(["directions", "M"])["final_statistic"]
    assert final["resampled", 16] < final["fixed", 256] < final["fixed", 16]
    # Both start from the same collapsed embedding, far from N(0, 1), and improve on it.
    assert (data["initial_statistic"] > 10 * data["null_mean"]).all()
    assert (data["final_statistic"] < data["initial_statistic"]).all()
    # Fixed directions are overfitted: tiny on the training directions, large on fresh ones.
    assert final["fixed", 16] > 100 * data.set_index(["directions", "M"])["train_statistic"]["fixed", 16]


# ------------------------------------------------------------------------------------
# Figure 20
# ------------------------------------------------------------------------------------


def closed_form_epps_pulley_over_the_real_line(x):
    """N * integral over R of |ecf(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt, in closed form:
    (1/N) sum_jk sqrt(2 pi) exp(-(x_j - x_k)^2 / 2) - 2 sum_j sqrt(pi) exp(-x_j^2 / 4)
    + N sqrt(2 pi / 3)."""
    n = len(x)
    differences = x[:, None] - x[None, :]
    pairs = np.sqrt(2 * np.pi) * np.exp(-(differences**2) / 2).sum() / n
    cross = 2 * np.sqrt(np.pi) * np.exp(-(x**2) / 4).sum()
    return pairs - cross + n * np.sqrt(2 * np.pi / 3)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_adaptive_quadrature_matches_the_closed_form(distribution):
    # Over [-12, 12] the integrand's tail beyond is below exp(-72): the integral over R.
    x = sample_projections(distribution, num_samples=64, rng=np.random.default_rng(1))
    assert exact_epps_pulley(x, t_max=12.0) == pytest.approx(closed_form_epps_pulley_over_the_real_line(x), rel=1e-9)


def test_fig20_error_falls_with_knots_and_17_knots_suffice_on_gaussian_data():
    data = compute_fig20(knots=[3, 9, 17, 65, 257], t_max_values=[3.0, 5.0], num_samples=256, repeats=5)
    median = data.groupby(["t_max", "distribution", "knots"])["relative_error"].median().unstack()
    for (t_max, distribution), errors in median.iterrows():
        assert errors[257] < errors[3] / 100, (t_max, distribution)
        assert errors[257] < errors[17], (t_max, distribution)
    gaussian_17 = data[(data["distribution"] == "gaussian") & (data["knots"] == 17)]
    # T = 3 (official code): typically well under 1e-3 (a few % of draws exceed it,
    # those whose statistic is unusually small); T = 5 (Algorithm 1): always.
    assert gaussian_17[gaussian_17["t_max"] == 3.0]["relative_error"].median() < 1e-3
    assert (gaussian_17[gaussian_17["t_max"] == 5.0]["relative_error"] < 1e-4).all()
    # Many knots converge to the adaptive-quadrature value: the statistic and the
    # reference integrate the same function.
    assert (data[data["knots"] == 257]["relative_error"] < 1e-4).all()


def test_every_synthetic_figure_of_this_module_draws_from_its_data():
    for figure, settings in (
        ("fig6", dict(num_samples=10, dim=4, steps=2, statistics=["epps_pulley", "henze_zirkler"])),
        ("fig16", dict(num_samples=10, cases=[{"dim": 4, "num_directions": 2}], steps=2, statistics=["watson"])),
        ("fig7", dict(sizes=[{"num_samples": 8, "dim": 4}], steps=2, resampled_directions=[1, 2],
                      fixed_directions=[1, 4])),
        ("fig20", dict(knots=[3, 17], repeats=1, num_samples=16)),
    ):
        compute, draw = experiment(figure)
        figure_object = draw(compute(**settings), **settings)
        assert figure_object.axes, figure
        plt.close(figure_object)
