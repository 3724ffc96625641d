import math

import arviz as az
import numpy as np
import pytest
import torch
from scipy import stats

from sbi_lite import BoxUniform, DirectPosterior, MCMCPosterior
from sbi_lite.density import ConditionalDensityEstimator
from sbi_lite.samplers import LowAcceptanceError, SliceSampler


class ShiftedNormal(ConditionalDensityEstimator):
    """q(θ|x) = N(θ; x + shift, 1) in 1-D: a stand-in for a leaky SNPE-C estimator."""

    input_dim = context_dim = 1

    def __init__(self, shift):
        super().__init__()
        self.shift = shift

    def log_prob(self, inputs, context):
        return torch.distributions.Normal(context[:, 0] + self.shift, 1.0).log_prob(inputs[:, 0])

    def sample(self, n, context, *, generator=None):
        return context + self.shift + torch.randn(n, 1, generator=generator)


def test_direct_log_prob_is_normalised_inside_the_support():
    prior = BoxUniform(torch.tensor([-3.0]), torch.tensor([3.0]))
    post = DirectPosterior(ShiftedNormal(2.5), prior, torch.zeros(1))
    grid = torch.linspace(-3, 3, 20_001)[:, None]
    mass = torch.trapezoid(post.log_prob(grid).exp(), grid[:, 0]).item()
    assert mass == pytest.approx(1.0, abs=0.01)
    assert torch.isneginf(post.log_prob(torch.tensor([[3.5]]))).all()
    draws = post.sample(2000, seed=0)
    assert (draws.abs() <= 3).all()
    assert post.last_acceptance == pytest.approx(stats.norm.cdf(0.5), abs=0.03)


def test_low_acceptance_falls_back_to_mcmc_on_the_truncated_estimator():
    prior = BoxUniform(torch.tensor([-3.0]), torch.tensor([3.5]))
    leaky = ShiftedNormal(6.0)  # 0.6% of its mass inside the box
    with pytest.raises(LowAcceptanceError, match="leaks mass"):
        DirectPosterior(leaky, prior, torch.zeros(1), sample_with="rejection", max_draws_factor=20).sample(500)
    post = DirectPosterior(leaky, prior, torch.zeros(1), sample_with="auto", chains=20)
    with pytest.warns(UserWarning, match="slice sampling"):
        draws = post.sample(3000, seed=1)
    assert post.last_method == "mcmc" and post.last_acceptance < 0.01
    truth = stats.truncnorm(-9.0, -2.5, loc=6.0, scale=1.0)
    assert stats.kstest(draws[:, 0].numpy(), truth.cdf).pvalue > 1e-3
    with pytest.raises(ValueError, match="sample_with"):
        DirectPosterior(leaky, prior, torch.zeros(1), sample_with="nuts")


def test_mcmc_posterior_arviz_diagnostics():
    prior = BoxUniform(-5 * torch.ones(2), 5 * torch.ones(2))

    def potential(t):
        return -0.5 * (t - 1.0).pow(2).sum(-1) + prior.log_prob(t)

    sampler = SliceSampler(potential, torch.zeros(8, 2), seed=0)
    post = MCMCPosterior(potential, prior, torch.zeros(2), sampler, thin=2)
    idata = post.to_arviz(1600)
    assert idata.posterior["theta"].shape == (1, 8, 200, 2) or idata.posterior["theta"].shape == (8, 200, 2)
    rhat = az.rhat(idata)["theta"].values
    ess = az.ess(idata)["theta"].values
    assert np.all(rhat < 1.05) and np.all(ess > 400)
    assert abs(float(idata.posterior["theta"].mean()) - 1.0) < 0.1
    assert post.log_prob(torch.ones(1, 2)).item() == pytest.approx(-math.log(100), abs=1e-5)  # the potential itself
    assert math.isinf(post.log_prob(torch.full((1, 2), 6.0)).item())
