"""Posteriors: immutable objects holding x0, with ``sample``, ``log_prob``, ``history``,
``to_arviz`` and ``save``.

- ``DirectPosterior`` (SNPE-C): q(θ|x0) restricted to the prior's support, sampled by rejection;
  ``log_prob`` is normalised (q's log-density minus the log of its mass inside the support).
- ``MCMCPosterior`` (SNL, SRE): a potential log q(x0|θ) + log p(θ) or f(θ, x0) + log p(θ),
  sampled by the vectorised slice sampler; ``log_prob`` is UNNORMALISED (the potential).
"""

from sbi_lite.posterior.base import Posterior
from sbi_lite.posterior.direct import DirectPosterior
from sbi_lite.posterior.mcmc import MCMCPosterior, NetworkPotential

__all__ = ["Posterior", "DirectPosterior", "MCMCPosterior", "NetworkPotential"]
