"""Health of one slice-sampling call: R-hat and ESS of its chains' unthinned trace.

An inference round draws its proposals from many short chains (infer's default: 100 chains, 1,000
draws at thin 10, so 100 sweeps per chain after burn-in). Classical split R-hat asks every chain
to have explored the whole posterior on its own, which chains that short do not do even at
stationarity. Measured by ``benchmarks/mcmc_health.py`` (``benchmarks/results/mcmc_health.md``,
20 seeds at infer's sizes): arviz's rank-normalised split R-hat of the unthinned trace exceeded
1.01 in 35% of the seeds on a standard 5-D Gaussian (max 1.014) and in all of them on a
correlated 5-D Gaussian (1.23–1.26) and on the Nonlinear Gaussian posterior in one sign mode
(≈ 1.1); from the 10 thinned draws per chain it was worse (75% on the Gaussian, max 1.038).

Nested R-hat (Margossian et al. 2022), made for many short chains, asks instead whether groups
of chains ("superchains") agree with each other, which they do at stationarity however short the
chains are, and stop doing when chains sit where they started (modes they cannot leave, too
short a burn-in). At stationarity it still exceeds 1 by about K / (2 · ESS) (each superchain
mean has Monte Carlo error), so few, large superchains keep it under the issue's 1.01: with
K = 5 superchains of 20 chains it stayed at or below 1.001 on the Gaussian (0 of 20 seeds above
1.01) and exceeded 1.01 in 15% of the seeds on the correlated Gaussian (bulk ESS ≈ 340 of
10,000, max 1.020), where 10 superchains false-alarmed in 65%. The price: chains split 70/30
between two modes the sampler cannot cross show as ≈ 1.02 rather than classical R-hat's ≈ 1.5,
and a split that happens to be the same in every superchain would not show at all.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
from torch import Tensor

__all__ = ["ChainHealth", "THRESHOLD", "SUPERCHAINS", "chain_health", "nested_rhat"]

# the threshold; sound for nested R-hat with 5 superchains (numbers in the module docstring)
THRESHOLD = 1.01
SUPERCHAINS = 5


class ChainHealth(NamedTuple):
    """R-hat (nested, max over parameters) and bulk ESS (arviz, min over parameters) of one call;
    NaN when there was no MCMC call or it was too short (fewer than 4 sweeps, or fewer than 2
    chains per superchain)."""

    rhat: float
    ess: float


def nested_rhat(trace: np.ndarray, superchains: int = SUPERCHAINS) -> np.ndarray:
    """Nested R-hat (Margossian et al. 2022) per parameter.

    Chains are grouped in index order into ``superchains`` groups of M = C // superchains chains
    (the rest are left out). nR̂² = 1 + B / W, with B the variance of the superchains' means and
    W the mean, over superchains, of the variance between their chains' means plus their chains'
    mean within-chain variance.

    Args:
        trace: (C, S, d) positions of C chains over S sweeps.
        superchains: number of groups K (at least 2, with at least 2 chains each).

    Returns:
        (d,) nested R-hat.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> bool(nested_rhat(rng.normal(size=(100, 100, 2))).max() < 1.01)
        True
    """
    c = trace.shape[0]
    m = c // superchains
    if superchains < 2 or m < 2:
        raise ValueError(f"superchains={superchains!r} must be >= 2 with >= 2 of the {c} chains each")
    t = np.asarray(trace, dtype=np.float64)[: superchains * m].reshape(superchains, m, *trace.shape[1:])
    chain_means = t.mean(2)  # (K, M, d)
    between = chain_means.mean(1).var(0, ddof=1)
    within = (chain_means.var(1, ddof=1) + t.var(2, ddof=1).mean(1)).mean(0)
    return np.sqrt(1 + between / within)


def chain_health(trace: Tensor) -> ChainHealth:
    """Nested R-hat (max over θ) and arviz's bulk ESS (min over θ) of a slice-sampling call.

    Args:
        trace: (C, S, d) every sweep's chain positions (the unthinned draws).

    Example:
        >>> import torch
        >>> h = chain_health(torch.randn(100, 100, 3, generator=torch.Generator().manual_seed(0)))
        >>> h.rhat < 1.01, round(h.ess, -3)
        (True, 10000.0)
    """
    import arviz as az

    c, s, d = trace.shape
    if s < 4 or c // SUPERCHAINS < 2:  # arviz's minimum; nested R-hat's groups
        return ChainHealth(math.nan, math.nan)
    values = trace.detach().double().numpy()
    with warnings.catch_warnings():  # constant parameters (a degenerate potential) divide 0 by 0: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat = nested_rhat(values)
        ess = [az.ess(values[..., j], method="bulk") for j in range(d)]
    return ChainHealth(float(np.max(rhat)), float(np.min(ess)))
