"""Posterior predictive checks on the Gaussian-linear model θ ~ N(0, I_2), x = θ + N(0, I).

The exact posterior is N(x0/2, I/2), so the posterior predictive is N(x0/2, 3/2 I): p-values,
z-scores and failure bookkeeping are checked against these numbers.
"""

import numpy as np
import pytest
import torch

from sbi_lite.diagnostics import holm, posterior_predictive_check, predictive_p_values

PRED_SD = 1.5**0.5


def simulator(theta, rng):
    return theta + rng.normal(size=theta.shape)


class Exact:
    """The exact posterior at ``x0`` (the ``Posterior.sample`` contract)."""

    def __init__(self, x0):
        self.x0 = torch.as_tensor(x0, dtype=torch.float32)

    def sample(self, n, seed):
        return self.x0 / 2 + 0.5**0.5 * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def flagged_rate(shift_sd, reps=200, n=1000, seed=0):
    """Share of x0 flagged (any Holm-adjusted p < 0.05), vectorised over repetitions.

    shift_sd None: x0 drawn from the model, the posterior fitted to it. Otherwise the posterior
    was fitted to a model draw x and the x0 checked lies ``shift_sd`` predictive sd from its mean.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(reps, 2)) + rng.normal(size=(reps, 2))
    predicted = x / 2 + PRED_SD * rng.normal(size=(n, reps, 2))
    observed = x if shift_sd is None else x / 2 + shift_sd * PRED_SD * np.array([1.0, 0.0])
    p = predictive_p_values(observed, predicted)
    return np.mean([holm(row).min() < 0.05 for row in p])


def test_x0_from_the_model_is_rarely_flagged_and_a_4_sd_outlier_always():
    assert flagged_rate(None) <= 0.10
    assert flagged_rate(4.0) >= 0.95


def test_p_values_count_ties_on_both_sides():
    predicted = np.array([[0.0], [1.0], [1.0], [2.0]])
    assert predictive_p_values(np.array([1.0]), predicted).tolist() == [1.0]  # 2·min(4, 4)/5 > 1
    assert predictive_p_values(np.array([2.0]), predicted).tolist() == [0.8]  # 2·(1 + 1)/5
    assert predictive_p_values(np.array([9.0]), predicted).tolist() == [0.4]  # the smallest possible: 2/5
    discrete = np.random.default_rng(1).integers(0, 3, size=(200, 2000))  # coarse ties: still valid
    assert (predictive_p_values(discrete[0], discrete[1:]) < 0.05).mean() <= 0.05


def test_end_to_end_on_the_analytic_posterior():
    x0 = np.array([1.0, -0.5])
    result = posterior_predictive_check(Exact(x0), simulator, x0, 2000, seed=3,
                                        statistics={"sum": lambda x: x.sum(1)})
    table = result.summary()
    assert list(table.index) == ["x1", "x2", "sum"] and result.flagged == []
    assert table["predictive_mean"].tolist() == pytest.approx([0.5, -0.25, 0.25], abs=0.1)
    assert table["predictive_sd"].tolist() == pytest.approx([PRED_SD, PRED_SD, 3**0.5], rel=0.05)
    assert table["z"].tolist() == pytest.approx([0.5 / PRED_SD, -0.25 / PRED_SD, 0.25 / 3**0.5], abs=0.06)
    bad_x0 = x0 / 2 + np.array([0.0, 4 * PRED_SD])  # the posterior was fitted elsewhere: x0 4 sd off
    bad = posterior_predictive_check(Exact(x0), simulator, bad_x0, 2000, seed=3)
    assert bad.flagged == ["x2"] and bad.z[1] == pytest.approx(4.0, abs=0.25) and bad.p_values[1] < 0.002
    again = posterior_predictive_check(Exact(x0), simulator, bad_x0, 2000, seed=3)
    assert np.array_equal(again.predicted, bad.predicted)


def test_failed_runs_are_counted_and_left_out():
    def flaky(theta, rng):
        x = theta + rng.normal(size=theta.shape)
        x[theta[:, 0] > 0.5] = np.nan  # P(θ1 > 0.5) = P(N(0, ½) > 0.5) ≈ 0.24
        return x

    result = posterior_predictive_check(Exact([0.0, 0.0]), flaky, [0.0, 0.0], 2000, seed=0)
    assert result.failed_fraction == pytest.approx(0.24, abs=0.03)
    assert len(result.predicted) == 2000 - round(2000 * result.failed_fraction)
    assert np.isfinite(result.predicted).all()


def test_errors_name_the_argument_and_the_value():
    with pytest.raises(ValueError, match="num_draws must be an integer >= 10, got 5"):
        posterior_predictive_check(Exact([0, 0]), simulator, [0.0, 0.0], 5)
    with pytest.raises(ValueError, match=r"x0\[1\] = nan"):
        posterior_predictive_check(Exact([0, 0]), simulator, [0.0, np.nan], 50)
    with pytest.raises(ValueError, match="x0 has 3 entries but the simulator returns 2"):
        posterior_predictive_check(Exact([0, 0]), simulator, [0.0, 0.0, 0.0], 50)
    with pytest.raises(ValueError, match=r"statistics\['bad'\] must map x"):
        posterior_predictive_check(Exact([0, 0]), simulator, [0.0, 0.0], 50, statistics={"bad": lambda x: x})
    with pytest.raises(ValueError, match="alpha must lie in"):
        posterior_predictive_check(Exact([0, 0]), simulator, [0.0, 0.0], 50, alpha=0)


def test_plot_marks_x0_in_every_panel_and_saves(tmp_path):
    from sbi_lite import plot

    result = posterior_predictive_check(Exact([0.0, 0.0]), simulator, [0.0, 5.0], 500, seed=0,
                                        statistics={"sum": lambda x: x.sum(1)})
    fig = plot.predictive_check(result, path=tmp_path / "ppc.png")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in axes] == ["x1", "x2", "sum"]
    assert [ax.lines[0].get_xdata()[0] for ax in axes] == pytest.approx([0.0, 5.0, 5.0])
    assert axes[1].title.get_color() == "red" and axes[0].title.get_color() == "black"
    assert (tmp_path / "ppc.png").stat().st_size > 5000
