"""``check_observation``: an exact conformal p-value, measured on a correlated Gaussian."""

import numpy as np
import pytest
import torch

from sbi_lite.diagnostics import check_observation

COV = np.array([[1.0, 0.95, 0.0], [0.95, 1.0, 0.0], [0.0, 0.0, 4.0]])  # correlated, unequal scales
CHOL = np.linalg.cholesky(COV)


def draws(n, rng):
    return rng.normal(size=(n, 3)) @ CHOL.T + np.array([10.0, -3.0, 0.0])


def flag_rate(x0_of, reps=200, n=2000, alpha=0.05):
    flags = []
    for r in range(reps):
        rng = np.random.default_rng((5, r))
        flags.append(check_observation(draws(n, rng), x0_of(rng), alpha=alpha, seed=r).p_value < alpha)
    return np.mean(flags)


SD = np.sqrt(np.diag(COV))
CENTRE = np.array([10.0, -3.0, 0.0])


def test_false_positive_rate_for_x0_from_the_same_distribution():
    assert flag_rate(lambda rng: draws(1, rng)[0]) <= 0.10


def test_power_far_outside_and_against_the_correlation():
    assert flag_rate(lambda rng: CENTRE + SD * np.array([0.0, 0.0, 5.0]), reps=50) >= 0.9
    # 1.5 marginal sd in each of x1, x2, but of opposite signs against a 0.95 correlation
    assert flag_rate(lambda rng: CENTRE + SD * np.array([1.5, -1.5, 0.0]), reps=50) >= 0.9


def test_whitening_lets_a_small_scale_coordinate_be_seen_next_to_a_large_one():
    sims = np.random.default_rng(2).normal(size=(2000, 2)) * np.array([1000.0, 0.01])
    assert check_observation(sims, [0.0, 0.05]).p_value < 0.01  # 5 sd off in the small coordinate
    assert check_observation(sims, [1000.0, 0.0]).p_value > 0.05  # 1 sd in the large one


def test_p_value_is_uniform_under_the_null():
    p = [check_observation(draws(600, np.random.default_rng((6, r))), draws(1, np.random.default_rng((7, r)))[0],
                           alpha=0.05, num_calibration=99, seed=r).p_value for r in range(400)]
    assert np.mean(np.array(p) <= 0.2) == pytest.approx(0.2, abs=0.06)
    assert np.mean(np.array(p) <= 0.5) == pytest.approx(0.5, abs=0.08)


def test_messages_say_where_x0_is_off():
    sims = draws(2000, np.random.default_rng(0))
    far = check_observation(sims, CENTRE + SD * np.array([0.0, 0.0, 5.0]))
    assert far.p_value == pytest.approx(1 / 501) and "x[2], +5.0 sd" in far.warning
    joint = check_observation(sims, CENTRE + SD * np.array([1.5, -1.5, 0.0]))
    assert "breaks their joint structure" in joint.warning
    typical = check_observation(sims, CENTRE)
    assert typical.warning is None and typical.message.startswith("x0 is typical of the 2000 simulations")


def test_failed_rows_are_dropped_and_torch_is_accepted():
    sims = torch.as_tensor(draws(1000, np.random.default_rng(1)))
    sims[::10] = float("nan")
    result = check_observation(sims, CENTRE, seed=0)
    assert result.num_failed == 100 and result.num_simulations == 900 and len(result.null) == 450


def test_errors_name_the_argument_and_the_value():
    sims = draws(100, np.random.default_rng(0))
    with pytest.raises(ValueError, match="x0 has 2 entries but x_sims has d_x = 3"):
        check_observation(sims, [0.0, 0.0])
    with pytest.raises(ValueError, match="alpha = 0.01 is below the p-value's resolution"):
        check_observation(sims, CENTRE, alpha=0.01)  # 50 calibration points: resolution 1/51
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        check_observation(sims, CENTRE, k=0, alpha=0.05)
    with pytest.raises(ValueError, match=r"x0\[0\] = inf"):
        check_observation(sims, [np.inf, 0.0, 0.0])
    with pytest.raises(ValueError, match="at least 12 finite rows; got 4"):
        check_observation(sims[:4], CENTRE, alpha=0.5)
