"""SNPE-C's truncated proposals: the prior restricted to the current posterior's region."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from sbi_lite.diagnostics.sequential import truncation_box
from sbi_lite.diagnostics.testset import sample_truncated_prior
from sbi_lite.priors import Prior
from sbi_lite.samplers import rejection_sample

__all__ = ["truncated_prior", "in_effect", "DEFAULT_TAIL", "DEFAULT_PRIOR_SHARE"]

# q's mass a truncated proposal may cut when none is given: 1e-2 with the highest-density cut
# (chosen by C2ST, benchmarks/results/snpe_causes.md row 17), 1e-3 for the box alone (unmeasured at 1e-2)
DEFAULT_TAIL = {"highest_density": 1e-2, "box": 1e-3}
# the share of a truncated proposal's draws taken from the whole prior when none is given: 0.1 with
# the highest-density cut (snpe_causes.md row 26), none for the box alone (unmeasured)
DEFAULT_PRIOR_SHARE = {"highest_density": 0.1, "box": 0.0}


def in_effect(value: float | None, defaults: dict[str, float], highest_density: bool) -> float:
    """``value``, or with None its default (``DEFAULT_TAIL``, ``DEFAULT_PRIOR_SHARE``) for a cut
    with (``highest_density``) or without log q.

    Example:
        >>> in_effect(None, DEFAULT_TAIL, True), in_effect(None, DEFAULT_TAIL, False), in_effect(0.05, DEFAULT_TAIL, True)
        (0.01, 0.001, 0.05)
    """
    if value is not None:
        return value
    return defaults["highest_density" if highest_density else "box"]


def truncated_prior(prior: Prior, posterior_draws: Tensor, gen: torch.Generator, *,
                    log_q: Callable[[Tensor], Tensor] | None = None, tail: float | None = None,
                    prior_share: float | None = None, margin: float = 0.1) -> Callable[[int], Tensor]:
    """Proposal: the prior restricted to a region holding the current posterior's mass.

    The region is a box spanning the [tail, 1 − tail] quantiles of posterior draws, widened by
    ``margin`` of its width on every side and, given ``log_q`` (θ (m, d) -> log q(θ|x0) (m,), up
    to a constant), cut further to the highest-density region {θ: log q(θ|x0) ≥ the ``tail``
    quantile of log q at the draws}, which holds 1 − tail of q's mass and, unlike a box, stays
    tight around each mode of a multimodal posterior. Because the proposal is the prior times an
    indicator of a region that (nearly) contains the posterior, maximum-likelihood training on all
    rounds' pairs learns the posterior inside it (truncated sequential NPE, Deistler et al. 2022):
    no atomic correction is needed.

    Of every m proposals, round(``prior_share`` · m) come from the whole prior, in an order drawn
    from ``gen``. The proposal is then the prior times a + (1 − a)·1[θ in the region]/Z, a constant
    multiple of the prior inside the region, so maximum likelihood still learns the posterior
    there; outside it the wide pairs hold q in place where the truncated draws never go (dropping
    round 1's prior pairs made C2ST worse on five of six observations, snpe_causes.md row 25).

    ``tail`` None: ``DEFAULT_TAIL``, 1e-2 with ``log_q`` (with the box, which cuts a little more,
    about 97% of a 5-D Gaussian q's mass is kept), 1e-3 for the box alone. ``prior_share`` None:
    ``DEFAULT_PRIOR_SHARE``, 0.1 with ``log_q``, 0 for the box alone.

    Example:
        >>> from sbi_lite import BoxUniform
        >>> prior, gen = BoxUniform(-torch.ones(2), torch.ones(2)), torch.Generator().manual_seed(0)
        >>> propose = truncated_prior(prior, 0.1 * torch.randn(1000, 2, generator=gen), gen, prior_share=0.2)
        >>> outside = propose(1000).abs().max(dim=1).values > 0.5
        >>> 0.12 < outside.float().mean().item() < 0.18  # a fifth of the prior's draws, 3/4 of them outside
        True
    """
    tail = in_effect(tail, DEFAULT_TAIL, log_q is not None)
    share = in_effect(prior_share, DEFAULT_PRIOR_SHARE, log_q is not None)
    box = truncation_box(posterior_draws, prior=prior, tail=tail, widen=margin)
    with torch.no_grad():
        level = None if log_q is None else log_q(posterior_draws).quantile(tail)

    def inside(theta: Tensor) -> Tensor:
        if level is None:
            return box.contains(theta)
        with torch.no_grad():
            return box.contains(theta) & (log_q(theta) >= level)

    def truncated(m: int) -> Tensor:
        return rejection_sample(lambda k: sample_truncated_prior(prior, box, k, seed=gen), inside, m)[0]

    def propose(m: int) -> Tensor:
        k = round(share * m)
        if k == 0:
            return truncated(m)
        wide = prior.sample((k,), generator=gen)
        theta = torch.cat([wide, truncated(m - k)]) if k < m else wide
        return theta[torch.randperm(m, generator=gen)]

    return propose
