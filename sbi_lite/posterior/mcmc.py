"""MCMCPosterior (SNL, SRE): a posterior known through an unnormalised potential, sampled by the
vectorised slice sampler; ``log_prob`` is UNNORMALISED (the potential)."""

from __future__ import annotations

import math
from typing import Any, Callable

import pandas as pd
import torch
from torch import Tensor, nn

from sbi_lite.checks import check_int
from sbi_lite.devices import module_device
from sbi_lite.posterior.base import Posterior
from sbi_lite.priors import Prior
from sbi_lite.samplers import SliceSampler
from sbi_lite.samplers.health import ChainHealth
from sbi_lite.seeding import Seed, torch_generator

__all__ = ["MCMCPosterior", "NetworkPotential"]


class NetworkPotential:
    """The unnormalised log posterior at x0 of a trained network, as a picklable callable.

    θ (B, d) -> (B,): log q(x0|θ) + log p(θ) (``kind="likelihood"``, SNL) or f(θ, x0) + log p(θ)
    (``kind="ratio"``, SRE); −inf outside the prior's support. The network term is computed on
    the network's device (read at every call, so moving the network moves the work); the result
    is on θ's device.

    Example:
        >>> from sbi_lite import BoxUniform
        >>> from sbi_lite.ratio import RatioEstimator
        >>> pot = NetworkPotential(RatioEstimator(2, 3), BoxUniform([0.0, 0.0], [1.0, 1.0]), torch.zeros(3), "ratio")
        >>> pot(torch.tensor([[0.5, 0.5], [2.0, 0.5]])).isinf().tolist()
        [False, True]
    """

    def __init__(self, net: nn.Module, prior: Prior, x0: Tensor, kind: str):
        if kind not in ("likelihood", "ratio"):
            raise ValueError(f"kind must be 'likelihood' or 'ratio'; got {kind!r}")
        self.net, self.prior, self.x0, self.kind = net, prior, x0.clone(), kind

    def __call__(self, theta: Tensor) -> Tensor:
        device = module_device(self.net)
        t, x = theta.to(device), self.x0.to(device).expand(len(theta), -1)
        term = self.net.log_prob(x, t) if self.kind == "likelihood" else self.net.log_ratio(t, x)
        term = term.to(theta.device)
        lp = self.prior.log_prob(theta)
        return torch.where(torch.isfinite(lp), term + lp, lp)


class MCMCPosterior(Posterior):
    """A posterior known through an unnormalised potential, sampled by slice sampling.

    Seeds: the posterior keeps a snapshot of the sampler it was built with, tuned and burned in
    once (from the sampler's own stream). ``sample(n, seed=s)`` restarts the chains from that
    snapshot with the stream ``s``: the same call gives the same draws, whatever was sampled
    before, from this or any other posterior. ``seed=None`` continues the chains (and their
    stream) from where the last call left them.

    Args:
        potential: θ (B, d) -> log p(θ|x0) + const (B,); a ``NetworkPotential`` to be saveable.
        prior: the prior.
        x0: (c,) observation.
        sampler: a ``SliceSampler`` holding ``potential``; the posterior keeps a copy.
        history: one row per round.
        thin: sweeps between kept draws.
        spec: how the network was built (see ``Posterior``).

    Example:
        >>> from sbi_lite import BoxUniform
        >>> prior = BoxUniform([-3.0], [3.0])
        >>> def potential(t):
        ...     return -0.5 * t[:, 0] ** 2 + prior.log_prob(t)
        >>> sampler = SliceSampler(potential, torch.zeros(4, 1), burn_in=5)
        >>> post = MCMCPosterior(potential, prior, torch.zeros(1), sampler, thin=1)
        >>> torch.equal(post.sample(8, seed=0), post.sample(8, seed=0))
        True
    """

    def __init__(self, potential: Callable[[Tensor], Tensor], prior: Prior, x0: Tensor, sampler: SliceSampler,
                 history: pd.DataFrame | None = None, thin: int = 10, spec: dict | None = None):
        super().__init__(prior, x0, history, spec)
        if sampler.potential is not potential:
            raise ValueError("sampler must hold this posterior's potential (SliceSampler(potential, ...) or "
                             "sampler.set_potential(potential))")
        check_int("thin", thin, minimum=1)
        self.potential, self.thin = potential, thin
        self._start = sampler.copy()
        self._warm: SliceSampler | None = None
        self._live: SliceSampler | None = None

    @property
    def sampler(self) -> SliceSampler:
        """A copy of the chains where this posterior's last sampling left them (the round loop
        starts the next round's chains there); changing it does not change this posterior."""
        return (self._live or self._warm or self._start).copy()

    def last_health(self) -> ChainHealth:
        """Nested R-hat and bulk ESS of this posterior's last ``sample`` (or ``to_arviz``) call,
        from its chains' unthinned trace; NaN before any. See ``sbi_lite.samplers.health``."""
        return self._live.last_health() if self._live is not None else ChainHealth(math.nan, math.nan)

    def _warmed(self) -> SliceSampler:
        if self._warm is None:
            warm = self._start.copy()
            warm.warm_up()
            self._warm = warm
        return self._warm

    def _chains(self, seed: Seed) -> SliceSampler:
        if seed is not None or self._live is None:
            self._live = self._warmed().copy()
            if seed is not None:
                self._live.generator = torch_generator(seed)
        return self._live

    def _sample(self, n: int, seed: Seed) -> Tensor:
        return self._chains(seed).sample(n, thin=self.thin)

    def _arviz_draws(self, n: int, seed: Seed, chains: int | None) -> Tensor:
        self._check_chains(chains, len(self._start.chains))
        return self._chains(seed).sample(n, thin=self.thin, per_chain=True)

    def _log_prob(self, theta: Tensor) -> Tensor:
        """UNNORMALISED: the potential."""
        return self.potential(theta)

    def _unshare(self) -> None:
        if self._live is not None:
            self._live = self._live.copy()

    def _save_parts(self) -> tuple[str, nn.Module, dict[str, Any], dict[str, Any]]:
        if not isinstance(self.potential, NetworkPotential):
            raise ValueError(f"only a NetworkPotential can be saved; this posterior's potential is a "
                             f"{type(self.potential).__name__}")
        # the warmed snapshot, so that a loaded posterior's seeded draws need no recomputation
        return "mcmc", self.potential.net, {"thin": self.thin}, {"sampler": self._warmed().state()}
