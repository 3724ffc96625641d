"""Truncated SBC on a model whose posterior is known at every x.

θ ~ U[−10, 10]², x = θ + N(0, 0.5² I): the posterior at x is N(x, 0.5² I) truncated to the box,
sampled exactly with scipy's truncnorm. A "sequential-style" posterior is exact within 5 units
(∞-norm) of x0 and shifted by 3 posterior sd farther away: prior-predictive SBC rejects it,
truncated SBC rightly passes it. An over-confident one (sd × 0.6 everywhere) fails both.
"""

import numpy as np
import pytest
import torch
from scipy import stats

from sbi_lite.diagnostics import Box, run_sbc, sample_truncated_prior, truncated_sbc, truncation_box
from sbi_lite.priors import BoxUniform

SIGMA = 0.5
PRIOR = BoxUniform(-10 * torch.ones(2), 10 * torch.ones(2))
X0 = np.array([1.0, -0.5])


def simulator(theta, rng):
    return theta + SIGMA * rng.normal(size=theta.shape)


def posterior(*, width=1.0, near=None, far_shift=3.0):
    """Batched sampler (x (N, 2), n) -> (n, N, 2) and log q(θ|x) (unnormalised)."""

    def loc_of(x):
        x = np.asarray(x, dtype=np.float64)
        if near is None:
            return x
        far = np.abs(x - X0).max(-1, keepdims=True) > near
        return x + far * far_shift * SIGMA

    def sample(x, n, seed):
        loc, sd = loc_of(x), width * SIGMA
        a, b = (-10 - loc) / sd, (10 - loc) / sd
        draws = stats.truncnorm.rvs(a, b, loc=loc, scale=sd, size=(n, *loc.shape), random_state=seed)
        return torch.as_tensor(draws, dtype=torch.float32)

    def log_prob(theta, x):
        z = (np.asarray(theta, dtype=np.float64) - loc_of(x)) / (width * SIGMA)
        return torch.as_tensor(-0.5 * (z**2).sum(-1))

    return sample, log_prob


def box_at_x0(sample):
    return truncation_box(sample(torch.as_tensor(X0[None]), 10_000, seed=0)[:, 0], prior=PRIOR)


def test_truncated_sbc_passes_a_posterior_correct_only_near_x0_which_prior_sbc_rejects():
    sample, log_prob = posterior(near=5.0)
    assert not run_sbc(sample, PRIOR, simulator, 300, 100, batched=True, seed=1).calibrated
    box = box_at_x0(sample)
    assert box.low.tolist() == pytest.approx((X0 - 2.32).tolist(), abs=0.1)  # ±(3.09 sd × 1.5)
    result = truncated_sbc(sample, PRIOR, simulator, box, 300, 100, log_prob=log_prob, seed=1)
    assert result.calibrated and result.coverage.verdict == "calibrated"
    assert result.num_tested + result.num_leaking == 300 and result.num_leaking < 30
    assert (torch.as_tensor(result.sbc.theta) - torch.as_tensor(X0)).abs().max() <= 2.33


def test_truncated_sbc_rejects_an_over_confident_posterior():
    sample, log_prob = posterior(width=0.6)
    result = truncated_sbc(sample, PRIOR, simulator, box_at_x0(sample), 300, 100, log_prob=log_prob, seed=2)
    assert result.sbc.verdict == ["over-confident"] * 2 and result.coverage.verdict == "over-confident"
    assert not result.calibrated and result.summary().loc["HPD coverage", "verdict"] == "over-confident"


def test_false_positive_rate_of_the_exact_posterior_on_the_truncated_problem():
    sample, log_prob = posterior()
    box = box_at_x0(sample)
    rejected = [not truncated_sbc(sample, PRIOR, simulator, box, 100, 50, seed=r).calibrated for r in range(50)]
    assert np.mean(rejected) <= 0.10


def test_draws_are_restricted_and_leaking_x_dropped():
    # a 1-unit box around x0: test x near its edges keep < 1/4 of their draws inside
    sample, _ = posterior()
    box = Box(torch.as_tensor(X0 - 0.5), torch.as_tensor(X0 + 0.5))
    result = truncated_sbc(sample, PRIOR, simulator, box, 400, 20, seed=3)
    assert result.num_leaking > 40 and result.sbc.calibrated
    assert result.num_tested == len(result.sbc.ranks) == 400 - result.num_leaking


def test_truncation_box_is_clipped_to_the_prior_bounds():
    sample, _ = posterior()
    box = truncation_box(sample(torch.tensor([[9.5, 0.0]]), 10_000, seed=0)[:, 0], prior=PRIOR)
    assert box.high.tolist() == pytest.approx([10.0, 2.32], abs=0.1) and box.low[0].item() == pytest.approx(7.3, abs=0.2)


def test_truncated_prior_of_a_non_box_prior_by_rejection():
    prior = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
    draws = sample_truncated_prior(prior, Box(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 3.0])), 2000, seed=0)
    assert bool((draws >= 0).all() and (draws[:, 0] <= 1).all())
    assert draws[:, 1].mean().item() == pytest.approx(0.79, abs=0.05)  # E[N(0,1) | 0 < z < 3]


def test_errors_name_the_argument_and_the_value():
    with pytest.raises(ValueError, match="Box needs low < high"):
        Box(torch.ones(2), torch.zeros(2))
    with pytest.raises(ValueError, match="tail must lie in"):
        truncation_box(np.zeros((10, 2)), tail=0.7)
    with pytest.raises(ValueError, match="does not overlap the prior's support"):
        sample_truncated_prior(PRIOR, Box(torch.tensor([11.0, 0.0]), torch.tensor([12.0, 1.0])), 5)
    sample, _ = posterior()
    with pytest.raises(ValueError, match="only 0 of 20 test x keep 50 draws in the box"):
        truncated_sbc(sample, PRIOR, simulator, Box(torch.tensor([-10.0, -10]), torch.tensor([-9.99, -9.99])), 20, 50)
