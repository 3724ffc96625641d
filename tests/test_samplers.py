import math

import pytest
import torch

from sbi_lite.samplers import LowAcceptanceError, SliceSampler, rejection_sample


def gaussian(mean, cov):
    prec = torch.linalg.inv(cov)
    return lambda t: -0.5 * (((t - mean) @ prec) * (t - mean)).sum(-1)


@pytest.mark.parametrize("d", [2, 5])
def test_slice_sampler_recovers_gaussian_moments(d):
    g = torch.Generator().manual_seed(d)
    a = torch.randn(d, d, generator=g)
    cov = a @ a.T / d + 0.5 * torch.eye(d)
    mean = torch.randn(d, generator=g)
    s = SliceSampler(gaussian(mean, cov), torch.zeros(40, d), seed=0)
    x = s.sample(4000, thin=3)
    assert (x.mean(0) - mean).abs().max() < 0.1
    assert (torch.cov(x.T) - cov).abs().max() < 0.15


def test_slice_sampler_bimodal_and_support():
    def bimodal(t):  # equal-weight modes at ±2, support [−4, 4]
        lp = torch.logaddexp(-0.5 * ((t - 2) / 0.5) ** 2, -0.5 * ((t + 2) / 0.5) ** 2).sum(-1)
        return torch.where((t.abs() <= 4).all(-1), lp, -math.inf)
    init = torch.tensor([[2.0], [-2.0]]).repeat(20, 1)
    x = SliceSampler(bimodal, init, seed=1).sample(4000, thin=2)
    assert x.abs().max() <= 4
    assert abs((x > 0).float().mean().item() - 0.5) < 0.05
    assert abs(x.abs().mean().item() - 2.0) < 0.05


def test_slice_sampler_is_deterministic_and_persistent():
    pot = gaussian(torch.zeros(2), torch.eye(2))
    a = SliceSampler(pot, torch.zeros(10, 2), seed=5).sample(100)
    b = SliceSampler(pot, torch.zeros(10, 2), seed=5).sample(100)
    assert torch.equal(a, b)
    s = SliceSampler(pot, torch.zeros(10, 2), seed=5, burn_in=20)
    s.sample(50)
    widths = s.widths.clone()
    s.set_potential(gaussian(torch.full((2,), 3.0), torch.eye(2)))  # the target moves
    assert s.needs_burn_in
    x = s.sample(2000, thin=2)
    assert torch.equal(s.widths, widths)  # tuned once, kept across targets
    assert (x.mean(0) - 3.0).abs().max() < 0.15
    with pytest.raises(ValueError, match="non-finite potential"):
        SliceSampler(lambda t: torch.full((len(t),), -math.inf), torch.zeros(3, 2))


def test_rejection_sampling_rate_and_bound():
    g = torch.Generator().manual_seed(0)
    draws, rate = rejection_sample(lambda m: torch.randn(m, 1, generator=g), lambda t: t[:, 0] > 1.0, 500)
    assert len(draws) == 500 and (draws > 1).all()
    assert rate == pytest.approx(0.1587, abs=0.02)
    with pytest.raises(LowAcceptanceError, match="accepted 0 of 5000"):
        rejection_sample(lambda m: torch.zeros(m, 1), lambda t: t[:, 0] > 1, 5, max_draws=5000)
