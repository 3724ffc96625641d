"""SNPE-C's truncated proposals: the prior restricted to the current posterior's region."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from sbi_lite.diagnostics.sequential import truncation_box
from sbi_lite.diagnostics.testset import sample_truncated_prior
from sbi_lite.priors import Prior
from sbi_lite.samplers import rejection_sample

__all__ = ["truncated_prior", "tail_in_effect", "DEFAULT_TAIL"]

# q's mass a truncated proposal may cut when none is given: 1e-2 with the highest-density cut
# (chosen by C2ST, benchmarks/results/snpe_causes.md row 17), 1e-3 for the box alone (unmeasured at 1e-2)
DEFAULT_TAIL = {"highest_density": 1e-2, "box": 1e-3}


def tail_in_effect(tail: float | None, highest_density: bool) -> float:
    """``tail``, or with None the default for a cut with (``highest_density``) or without log q.

    Example:
        >>> tail_in_effect(None, True), tail_in_effect(None, False), tail_in_effect(0.05, True)
        (0.01, 0.001, 0.05)
    """
    if tail is not None:
        return tail
    return DEFAULT_TAIL["highest_density" if highest_density else "box"]


def truncated_prior(prior: Prior, posterior_draws: Tensor, gen: torch.Generator, *,
                    log_q: Callable[[Tensor], Tensor] | None = None, tail: float | None = None,
                    margin: float = 0.1) -> Callable[[int], Tensor]:
    """Proposal: the prior restricted to a region holding the current posterior's mass.

    The region is a box spanning the [tail, 1 − tail] quantiles of posterior draws, widened by
    ``margin`` of its width on every side and, given ``log_q`` (θ (m, d) -> log q(θ|x0) (m,), up
    to a constant), cut further to the highest-density region {θ: log q(θ|x0) ≥ the ``tail``
    quantile of log q at the draws}, which holds 1 − tail of q's mass and, unlike a box, stays
    tight around each mode of a multimodal posterior. Because the proposal is the prior times an
    indicator of a region that (nearly) contains the posterior, maximum-likelihood training on all
    rounds' pairs learns the posterior inside it (truncated sequential NPE, Deistler et al. 2022):
    no atomic correction is needed.

    ``tail`` None: ``DEFAULT_TAIL``, 1e-2 with ``log_q`` (with the box, which cuts a little more,
    about 97% of a 5-D Gaussian q's mass is kept), 1e-3 for the box alone.
    """
    tail = tail_in_effect(tail, log_q is not None)
    box = truncation_box(posterior_draws, prior=prior, tail=tail, widen=margin)
    with torch.no_grad():
        level = None if log_q is None else log_q(posterior_draws).quantile(tail)

    def inside(theta: Tensor) -> Tensor:
        if level is None:
            return box.contains(theta)
        with torch.no_grad():
            return box.contains(theta) & (log_q(theta) >= level)

    def propose(m: int) -> Tensor:
        return rejection_sample(lambda k: sample_truncated_prior(prior, box, k, seed=gen), inside, m)[0]

    return propose
