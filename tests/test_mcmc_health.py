"""R-hat and ESS of the slice sampler's real chains, at infer's per-round sizes, and in the history."""

import math
import warnings

import numpy as np
import pytest
import torch

from sbi_lite import BoxUniform, infer
from sbi_lite.inference import rounds
from sbi_lite.samplers import SliceSampler
from sbi_lite.samplers.health import THRESHOLD, chain_health, nested_rhat
from sbi_lite.train import TrainConfig


def one_round(potential, init, seed):
    """What one SNL/SRE round does: tune, burn in, then 1,000 draws from 100 chains at thin 10."""
    s = SliceSampler(potential, init, seed=seed)
    s.sample(1000, thin=10)
    return s.last_health()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_healthy_chains_stay_below_the_threshold(seed):
    # benchmarks/mcmc_health.py: over 20 seeds the largest nested R-hat here was 1.001 and the
    # smallest bulk ESS 9,700 (of 10,000 unthinned draws)
    g = torch.Generator().manual_seed(seed)
    box = 3.0
    init = box * (2 * torch.rand(100, 5, generator=g) - 1)
    health = one_round(lambda t: -0.5 * t.pow(2).sum(-1), init, seed)
    assert health.rhat < 1.003
    assert health.ess > 8000


def bimodal(t):  # modes at θ1 = ±10, 20 sd apart: no slice bracket spans the gap
    return torch.logaddexp(-0.5 * (t[:, 0] - 10) ** 2, -0.5 * (t[:, 0] + 10) ** 2) - 0.5 * t[:, 1:].pow(2).sum(-1)


def test_chains_stuck_in_modes_exceed_the_threshold():
    g = torch.Generator().manual_seed(0)
    init = torch.randn(100, 3, generator=g)
    init[:, 0] += torch.where(torch.randperm(100, generator=g) < 70, 10.0, -10.0)  # 70/30, the truth is 50/50
    health = one_round(bimodal, init, 0)
    assert health.rhat > 1.015 > THRESHOLD  # 1.020 here (benchmarks/results/mcmc_health.md)
    assert health.ess < 1000


def test_nested_rhat_sees_superchains_disagree_not_short_chains():
    rng = np.random.default_rng(0)
    # AR(1) chains at stationarity with ρ = 0.9 (τ ≈ 19): short, but every chain started in the target
    n, c, rho = 100, 100, 0.9
    x = np.empty((c, n))
    x[:, 0] = rng.normal(size=c)
    for i in range(1, n):
        x[:, i] = rho * x[:, i - 1] + math.sqrt(1 - rho**2) * rng.normal(size=c)
    assert nested_rhat(x[..., None])[0] < THRESHOLD
    shifted = x.copy()
    shifted[:20] += 1.0  # one superchain's chains elsewhere
    assert nested_rhat(shifted[..., None])[0] > 1.05
    assert math.isnan(chain_health(torch.zeros(100, 3, 2)).rhat)  # fewer than 4 sweeps: no verdict
    with pytest.raises(ValueError, match="superchains=1"):
        nested_rhat(x[..., None], superchains=1)


def linear_gaussian(theta, rng):
    return theta + 0.5 * rng.standard_normal(theta.shape)


def test_snl_records_chain_health_and_warns_when_above(monkeypatch):
    prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
    kwargs = dict(method="snl", rounds=2, simulations_per_round=200, progress=False, seed=0,
                  estimator_kwargs={"hidden": 16, "num_transforms": 2}, train_config=TrainConfig(max_epochs=5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a healthy run does not warn
        warnings.filterwarnings("ignore", message=".*x0")  # round 1's typicality check is not what is tested
        h = infer(linear_gaussian, prior, [0.3, -0.2], **kwargs).history
    assert math.isnan(h["mcmc_rhat"][0]) and math.isnan(h["mcmc_ess"][0])  # round 1 proposes from the prior
    assert 1.0 <= h["mcmc_rhat"][1] < THRESHOLD
    assert 50 < h["mcmc_ess"][1] <= 2 * 200 * 10  # of 100 chains × 20 sweeps
    monkeypatch.setattr(rounds, "THRESHOLD", 1.0)  # every real R-hat is above 1: the warning must fire
    with pytest.warns(UserWarning, match=r"proposing round 2 disagree: nested R-hat 1\.0\d\d > 1\.0"):
        infer(linear_gaussian, prior, [0.3, -0.2], **kwargs)
