"""SNPE-C's truncated proposals: the region, and the share of draws taken from the whole prior."""

import pytest
import torch

from sbi_lite import BoxUniform
from sbi_lite.inference.truncation import truncated_prior

PRIOR = BoxUniform(-torch.ones(2), torch.ones(2))


def proposals(share, n=20_000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    draws = 0.1 * torch.randn(2000, 2, generator=gen)  # q's draws: the region is about [-0.3, 0.3]^2
    return truncated_prior(PRIOR, draws, gen, prior_share=share)(n)


@pytest.mark.parametrize("share", [0.0, 0.1, 0.3])
def test_a_truncated_proposal_draws_its_prior_share_from_the_whole_prior(share):
    theta = proposals(share)
    outside = theta.abs().max(dim=1).values > 0.5  # far outside the region: only the prior's draws land there
    # of the prior's share, 1 - 0.5^2 falls outside [-0.5, 0.5]^2 (binomial sd < 0.004 at n = 20,000)
    assert outside.float().mean().item() == pytest.approx(share * 0.75, abs=0.012)
    # outside the region the draws are the prior's: uniform on the rest of the box
    if share:
        assert theta[outside].abs().max(dim=1).values.mean().item() == pytest.approx(7 / 9, abs=0.02)  # E[max|θ| : max|θ| > 1/2]
    # the prior's draws are spread over the batch, not stacked at its head
    assert outside[: len(theta) // 2].float().mean().item() == pytest.approx(share * 0.75, abs=0.015)


def test_the_same_generator_state_gives_the_same_proposals():
    assert torch.equal(proposals(0.1, n=500), proposals(0.1, n=500))
    assert not torch.equal(proposals(0.1, n=500, seed=0), proposals(0.1, n=500, seed=1))
