import math
import re
import warnings

import arviz as az
import numpy as np
import pytest
import torch
from scipy import stats

from sbi_lite import BoxUniform, DirectPosterior, MCMCPosterior, TorchPrior
from sbi_lite.density import ConditionalDensityEstimator
from sbi_lite.density.base import Capabilities
from sbi_lite.posterior.direct import MASS_DRAWS
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


def gaussian_potential(prior, mean):
    def potential(t):
        return -0.5 * (t - mean).pow(2).sum(-1) / 0.25 + prior.log_prob(t)
    return potential


def test_mcmc_sample_is_a_function_of_its_seed_and_posteriors_share_no_chains():
    prior = BoxUniform(-5 * torch.ones(2), 5 * torch.ones(2))
    first, final = gaussian_potential(prior, -2.0), gaussian_potential(prior, 2.0)
    sampler = SliceSampler(first, torch.zeros(4, 2), seed=0, burn_in=20)
    early = MCMCPosterior(first, prior, torch.zeros(2), sampler, thin=2)
    sampler.set_potential(final)  # what the round loop did: one sampler object moved on to the next round
    late = MCMCPosterior(final, prior, torch.zeros(2), sampler, thin=2)
    a = late.sample(200, seed=0)
    assert torch.equal(late.sample(200, seed=0), a)
    assert not torch.equal(late.sample(200), a)  # seed=None continues the chains
    drawn_early = early.sample(400, seed=1)  # an earlier round's posterior samples its own target...
    assert (drawn_early.mean(0) + 2.0).abs().max() < 0.3
    assert torch.equal(late.sample(200, seed=0), a)  # ...and moves nothing of the final one's
    assert (a.mean(0) - 2.0).abs().max() < 0.3


def test_direct_mcmc_sample_is_a_function_of_its_seed():
    prior = BoxUniform(torch.tensor([-3.0]), torch.tensor([3.5]))
    post = DirectPosterior(ShiftedNormal(6.0), prior, torch.zeros(1), sample_with="auto", chains=10)
    with pytest.warns(UserWarning, match="slice sampling"):
        a, b = post.sample(100, seed=2), post.sample(100, seed=2)
        c = post.sample(100, seed=3)
    assert post.last_method == "mcmc" and torch.equal(a, b) and not torch.equal(a, c)
    mcmc = DirectPosterior(ShiftedNormal(6.0), prior, torch.zeros(1), sample_with="mcmc", chains=10)
    x = mcmc.sample(100, seed=2)
    assert not torch.equal(mcmc.sample(100), x)
    assert torch.equal(mcmc.sample(100, seed=2), x)


class TwoModes(ConditionalDensityEstimator):
    """q(θ|x) in 1-D: modes at ±3 (sd 0.3) and, with ``leak``, most mass far outside [−5, 5]."""

    input_dim = context_dim = 1

    def __init__(self, leak=0.0):
        super().__init__()
        self.weights = torch.tensor([(1 - leak) / 2, (1 - leak) / 2, leak + 1e-12])
        self.means, self.sd = torch.tensor([-3.0, 3.0, 50.0]), torch.tensor([0.3, 0.3, 1.0])

    def log_prob(self, inputs, context):
        comp = torch.distributions.Normal(self.means, self.sd).log_prob(inputs)
        return torch.logsumexp(comp + self.weights.log(), -1)

    def sample(self, n, context, *, generator=None):
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return (self.means[k] + self.sd[k] * torch.randn(n, generator=generator))[:, None]


@pytest.mark.parametrize("sample_with", ["mcmc", "auto"])
def test_direct_to_arviz_uses_the_real_chains_when_sampling_by_mcmc(sample_with):
    prior = BoxUniform(torch.tensor([-5.0]), torch.tensor([5.0]))
    post = DirectPosterior(TwoModes(leak=0.995), prior, torch.zeros(1), sample_with=sample_with, chains=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the auto fallback's warning
        idata = post.to_arviz(400, seed=0)
        assert post.last_method == "mcmc"
        assert float(az.rhat(idata)["theta"].max()) > 1.1  # the chains disagree, and R-hat says so...
        assert idata.posterior["theta"].shape[-3:] == (8, 50, 1)
        chain_means = idata.posterior["theta"].values.reshape(8, 50).mean(1)
        assert (chain_means < 0).any() and (chain_means > 0).any()  # ...as they sit in different modes
        with pytest.raises(ValueError, match="chains=4, but these draws come from the slice sampler's 8 real chains"):
            post.to_arviz(400, chains=4, seed=0)
    iid = DirectPosterior(TwoModes(), prior, torch.zeros(1), sample_with="rejection").to_arviz(400, seed=0)
    assert iid.posterior["theta"].shape[-3:] == (4, 100, 1) and float(az.rhat(iid)["theta"].max()) < 1.05


def test_mcmc_to_arviz_refuses_a_different_number_of_chains():
    prior = BoxUniform(-5 * torch.ones(2), 5 * torch.ones(2))
    pot = gaussian_potential(prior, 0.0)
    post = MCMCPosterior(pot, prior, torch.zeros(2), SliceSampler(pot, torch.zeros(6, 2), seed=0, burn_in=5), thin=1)
    with pytest.raises(ValueError, match="chains=4, but .* 6 real chains"):
        post.to_arviz(60, chains=4)
    assert post.to_arviz(60, chains=6).posterior["theta"].shape[-3:] == (6, 10, 2)


def _posteriors_2d():
    from sbi_lite import build
    from sbi_lite.inference import METHODS

    prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
    normal = TorchPrior(torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2)))  # ±inf counts as "real"
    likelihood = build("maf", 1, 2, hidden=8, num_transforms=1)  # SNL: q(x|θ)
    pot = METHODS["snl"].potential(likelihood, prior, torch.zeros(1))
    return {"direct": DirectPosterior(build("maf", 2, 1, hidden=8, num_transforms=1), prior, torch.zeros(1)),
            "direct_normal_prior": DirectPosterior(build("maf", 2, 1, hidden=8, num_transforms=1), normal,
                                                   torch.zeros(1)),
            "snl": MCMCPosterior(pot, prior, torch.zeros(1), SliceSampler(pot, torch.zeros(4, 2), seed=0, burn_in=5),
                                 thin=1)}


@pytest.mark.parametrize("kind", ["direct", "direct_normal_prior", "snl"])
def test_posterior_arguments_are_checked_and_named(kind):
    post = _posteriors_2d()[kind]
    for bad in (torch.zeros(4, 1), torch.zeros(3), torch.zeros(2, 2, 2)):
        expected = f"theta must have shape (B, 2) or (2,); got {tuple(bad.shape)}"
        with pytest.raises(ValueError, match=re.escape(expected)):
            post.log_prob(bad)
    theta = torch.tensor([[0.5, 0.5], [math.inf, -math.inf], [math.nan, 0.0], [0.0, math.inf], [40.0, 0.0]])
    lp = post.log_prob(theta)
    assert lp.shape == (5,) and torch.isfinite(lp[0]) and torch.isneginf(lp[1:4]).all()
    assert torch.isneginf(lp[4]) == (kind != "direct_normal_prior")
    assert post.log_prob(theta[0]).shape == () and post.log_prob(theta[0]) == lp[0]
    assert post.sample(0, seed=0).shape == (0, 2)
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        post.sample(-1)
    for bad, shown in ((2.5, "2.5"), (True, "True"), ("3", "'3'")):
        with pytest.raises(TypeError, match=f"n must be an int, got {shown}"):
            post.sample(bad)
    assert post.sample(np.int64(4), seed=0).shape == (4, 2)


class OdeStandIn(ShiftedNormal):
    """A leaky estimator declaring an ODE log-density, counting the rows it evaluates and draws."""

    capabilities = Capabilities(log_prob="ode", sample_cost="expensive")

    def __init__(self, shift):
        super().__init__(shift)
        self.evaluated = self.drawn = 0

    def log_prob(self, inputs, context):
        self.evaluated += len(inputs)
        return super().log_prob(inputs, context)

    def sample(self, n, context, *, generator=None):
        self.drawn += n
        return super().sample(n, context, generator=generator)


def test_ode_estimators_are_never_slice_sampled_and_normalised_cheaply():
    prior = BoxUniform(torch.tensor([-3.0]), torch.tensor([3.5]))
    with pytest.raises(ValueError, match="sample_with='mcmc' needs a cheap log-density.*ODE solve"):
        DirectPosterior(OdeStandIn(6.0), prior, torch.zeros(1), sample_with="mcmc")
    leaky = OdeStandIn(9.0)  # 0.01% of its mass inside the box
    post = DirectPosterior(leaky, prior, torch.zeros(1), sample_with="auto")
    for n in (100, 10_000):
        with pytest.raises(LowAcceptanceError, match="Slice sampling is no remedy.*ODE solve"):
            post.sample(n, seed=0)
    # no MCMC; n = 100 gives up after 2,000 of its 10,000-draw floor (none accepted in 1,214 shows
    # that fewer than 100 would be in 10,000, -ln(1e-6) · 10,000 / (100 - ln(1e-6)) = 1,213.85, and
    # the second batch doubles the first), n = 10,000 after its first batch, not after
    # 1 / min_acceptance = 100 draws per sample (1,000,000)
    assert leaky.evaluated == 0 and leaky.drawn == 2_000 + 10_000
    with pytest.raises(LowAcceptanceError, match="Slice sampling is no remedy"):  # asked for rejection: same advice
        DirectPosterior(leaky, prior, torch.zeros(1), sample_with="rejection").sample(100, seed=0)
    kept = OdeStandIn(2.5)
    post = DirectPosterior(kept, prior, torch.zeros(1))
    post.log_prob(torch.zeros(3, 1))
    post.log_prob(torch.ones(3, 1))
    assert kept.drawn == MASS_DRAWS["ode"] == 2_000 and kept.evaluated == 6


def test_infer_refuses_mcmc_on_an_ode_estimator_before_simulating():
    from sbi_lite import infer

    def never(theta):
        raise AssertionError("simulated")

    with pytest.raises(ValueError, match="sample_with='mcmc' slice-samples .*'diffusion' .*ODE solve"):
        infer(never, BoxUniform(-torch.ones(2), torch.ones(2)), [0.0, 0.0], estimator="diffusion", sample_with="mcmc",
              progress=False)
