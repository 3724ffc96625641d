"""Round-to-round posterior change: its null level and the stopping rule."""

import numpy as np
import pytest

from sbi_lite.diagnostics import DEFAULT_DRAWS, DEFAULT_THRESHOLD, converged, null_change, posterior_change

COV = np.array([[4.0, 1.9], [1.9, 1.0]])  # correlated, unequal scales: the change is in posterior sd
CHOL = np.linalg.cholesky(COV)


def gaussian(rng, n=DEFAULT_DRAWS, shift=(0.0, 0.0), width=1.0):
    """N(L·shift, COV) with the standard coordinates scaled by width: ``shift`` is in Mahalanobis units."""
    return (rng.normal(size=(n, 2)) * width + np.asarray(shift)) @ CHOL.T


def test_same_posterior_gives_the_null_level_and_converges():
    rng = np.random.default_rng(0)
    changes = [posterior_change(gaussian(rng), gaussian(rng), seed=r) for r in range(40)]
    assert 0.03 < np.median(changes) < 0.08 and max(changes) < DEFAULT_THRESHOLD
    assert converged(changes[-3:], patience=3)


def test_a_move_of_a_third_of_an_sd_is_measured_and_not_converged():
    rng = np.random.default_rng(1)
    moved = [posterior_change(gaussian(rng), gaussian(rng, shift=(0.3, 0.0)), seed=r) for r in range(40)]
    assert np.mean(moved) == pytest.approx(0.3, abs=0.03) and min(moved) > DEFAULT_THRESHOLD
    assert not converged([0.05, moved[0]])
    # half a marginal sd of x1 against the 0.95 correlation is 0.5/√(1 − 0.95²) = 1.6 sd of the posterior there
    against = posterior_change(gaussian(rng), gaussian(rng) + [0.5 * 2.0, 0.0], seed=0)
    assert against == pytest.approx(1.6, abs=0.1)
    wider = posterior_change(gaussian(rng), gaussian(rng, width=1.3), seed=0)
    assert DEFAULT_THRESHOLD < wider < 0.3


def test_scale_free_and_unequal_sizes():
    rng = np.random.default_rng(2)
    a, b = gaussian(rng, 2000), gaussian(rng, 3000, shift=(0.0, 0.5))
    assert posterior_change(a * 1000, b * 1000) == pytest.approx(posterior_change(a, b), rel=1e-9)
    assert posterior_change(a, b) == pytest.approx(0.5, abs=0.06)


def test_null_change_matches_the_documented_table():
    assert null_change(1000, 2, repetitions=100) == pytest.approx(0.135, abs=0.025)


def test_converged_rule():
    assert converged([0.5, 0.1, 0.12], threshold=0.15, patience=2)
    assert not converged([0.5, 0.1, 0.2], threshold=0.15, patience=2)
    assert not converged([0.1], patience=2)  # not enough rounds yet
    with pytest.raises(ValueError, match="patience must be an integer >= 1, got 0"):
        converged([0.1], patience=0)
    with pytest.raises(ValueError, match="threshold must be > 0, got -1"):
        converged([0.1], threshold=-1)
    with pytest.raises(ValueError, match="changes must be a sequence of numbers >= 0"):
        converged([0.1, float("nan")])


def test_errors_name_the_argument_and_the_value():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="previous_draws has d = 3 but current_draws has d = 2"):
        posterior_change(rng.normal(size=(50, 3)), rng.normal(size=(50, 2)))
    with pytest.raises(ValueError, match="no spread"):
        posterior_change(rng.normal(size=(50, 2)), np.ones((50, 2)))
    with pytest.raises(ValueError, match=r"current_draws\[0, 0\] = nan"):
        posterior_change(rng.normal(size=(50, 2)), np.full((50, 2), np.nan))
