import math

import pytest
import torch
from torch.distributions import Exponential, MultivariateNormal, Normal, Uniform

from sbi_lite import AffineBoxUniform, BoxUniform, as_prior
from simulators import mg1


def test_box_uniform_density_support_and_sampling():
    prior = BoxUniform(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 4.0]))
    g = torch.Generator().manual_seed(0)
    theta = prior.sample((10_000,), generator=g)
    assert theta.shape == (10_000, 2)
    assert prior.support_contains(theta).all()
    assert torch.allclose(theta.mean(0), torch.tensor([0.0, 2.0]), atol=0.05)
    lp = prior.log_prob(torch.tensor([[0.0, 1.0], [1.5, 1.0], [0.0, -0.1]]))
    assert lp[0].item() == pytest.approx(-math.log(8.0))
    assert torch.isinf(lp[1:]).all() and (lp[1:] < 0).all()


def test_sampling_is_reproducible_and_leaves_global_rng_alone():
    prior = BoxUniform(torch.zeros(3), torch.ones(3))
    before = torch.random.get_rng_state()
    a = prior.sample((5,), generator=torch.Generator().manual_seed(3))
    b = prior.sample((5,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(before, torch.random.get_rng_state())


def test_bad_box_and_bad_dimension_raise_clearly():
    with pytest.raises(ValueError, match="high > low"):
        BoxUniform(torch.ones(2), torch.zeros(2))
    with pytest.raises(ValueError, match="dimension 2"):
        BoxUniform(torch.zeros(2), torch.ones(2)).log_prob(torch.zeros(3))


def test_mg1_prior_is_an_affine_box():
    prior = mg1.prior()
    theta = prior.sample((20_000,), generator=torch.Generator().manual_seed(1))
    assert (theta[:, 1] >= theta[:, 0]).all()
    assert theta[:, 0].max() <= 10 and (theta[:, 1] - theta[:, 0]).max() <= 10 and theta[:, 2].max() <= 1 / 3
    assert prior.log_prob(torch.tensor([1.0, 5.0, 0.2])).item() == pytest.approx(math.log(0.03), abs=1e-6)
    outside = torch.tensor([[5.0, 4.0, 0.1], [1.0, 12.0, 0.1], [1.0, 2.0, 0.4], [-0.1, 1.0, 0.1]])
    assert torch.isneginf(prior.log_prob(outside)).all()
    # (θ1, θ2) = (9, 12) is inside the θ-bounding box but outside the support
    assert not prior.support_contains(torch.tensor([9.0, 20.0, 0.1]))
    assert torch.allclose(theta.mean(0), prior.mean, atol=0.1)
    assert torch.allclose(theta.std(0), prior.stddev, rtol=0.03)


def test_torch_distributions_are_accepted():
    mvn = as_prior(MultivariateNormal(torch.zeros(2), torch.eye(2)))
    assert mvn.sample((4,), generator=torch.Generator().manual_seed(0)).shape == (4, 2)
    assert mvn.log_prob(torch.zeros(2)).item() == pytest.approx(-math.log(2 * math.pi), abs=1e-5)
    expo = as_prior(Exponential(torch.ones(2)))  # independent coordinates
    assert torch.isneginf(expo.log_prob(torch.tensor([-1.0, 1.0])))
    assert expo.log_prob(torch.tensor([1.0, 1.0])).item() == pytest.approx(-2.0)
    uni = as_prior(Uniform(torch.zeros(2), torch.ones(2)))
    assert uni.bounds is not None and torch.equal(uni.bounds[1], torch.ones(2))
    assert torch.isneginf(uni.log_prob(torch.tensor([2.0, 0.5])))
    one_d = as_prior(Normal(0.0, 1.0))
    assert one_d.dim == 1 and one_d.sample((3,)).shape == (3, 1)
    assert isinstance(AffineBoxUniform(torch.zeros(2), torch.ones(2), torch.eye(2)), type(as_prior(mg1.prior())))
    with pytest.raises(TypeError, match="prior must be"):
        as_prior("uniform")
