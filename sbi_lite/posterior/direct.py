"""DirectPosterior (SNPE-C): q(θ|x0) restricted to the prior's support, sampled by rejection
(or by slice sampling inside the support); ``log_prob`` is normalised (q's log-density minus the
log of its mass inside the support)."""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import pandas as pd
import torch
from torch import Tensor, nn

from sbi_lite.devices import module_device
from sbi_lite.density.base import Capabilities, ConditionalDensityEstimator
from sbi_lite.checks import check_int
from sbi_lite.posterior.base import Posterior
from sbi_lite.priors import Prior
from sbi_lite.samplers import LowAcceptanceError, SliceSampler, rejection_sample
from sbi_lite.samplers.health import ChainHealth
from sbi_lite.seeding import Seed, torch_generator

__all__ = ["DirectPosterior"]

# q draws used to estimate q's mass inside the support, by the cost of q's log-density (its
# sampling is as costly: an ODE solve for "ode"). Standard error of the log mass ≈
# sqrt((1 − p) / (N p)) for mass p: at p = 0.5, 0.003 (N = 100,000), 0.01 (10,000), 0.022 (2,000).
MASS_DRAWS = {"exact": 100_000, "estimate": 10_000, "ode": 2_000}

_ODE_ADVICE = ("Slice sampling is no remedy here: this estimator's log-density is an ODE solve "
               "(capabilities.log_prob='ode', hundreds of network calls per evaluation), and MCMC would "
               "evaluate it hundreds of thousands of times. Train longer or on more simulations, or allow "
               "more draws (sample_with='rejection' with a larger max_draws_factor).")


class DirectPosterior(Posterior):
    """q(θ|x0) ⟂ the prior's support.

    Seeds: ``sample(n, seed=s)`` is a function of (n, s). Slice sampling (``sample_with="mcmc"``,
    or the "auto" fallback) restarts, for every call with a seed, from one snapshot: chains
    started at prior draws, tuned and burned in once from a fixed stream (seed 0). ``seed=None``
    continues the chains from where the last MCMC call left them.

    Args:
        estimator: q(θ|x), with ``log_prob``, ``sample`` and ``capabilities``.
        prior: supplies ``support_contains`` and the dimension.
        x0: (c,) observation.
        history: one row per round.
        sample_with: "rejection" (i.i.d. draws of q kept inside the support; raises
            ``LowAcceptanceError`` once ``max_draws_factor`` draws per sample surely would not do),
            "mcmc" (slice sampling of log q(θ|x0) restricted to the support), or "auto" (rejection,
            switching to MCMC with a warning once acceptance is below ``min_acceptance``: once
            1 / min_acceptance draws per sample surely would not do). Either shows a hopeless
            proposal within a few batches (``rejection_sample``). For an estimator with an ODE
            log-density, "mcmc" is refused, and "rejection" and "auto" raise ``LowAcceptanceError``
            with advice that does not suggest MCMC.
        chains: slice-sampling chains when MCMC is used.
        mass_draws: q draws that estimate its mass inside the support for ``log_prob`` (default by
            ``capabilities.log_prob``: ``MASS_DRAWS``).
        spec: how the estimator was built (see ``Posterior``).

    Example:
        >>> from sbi_lite import BoxUniform, build
        >>> q = build("maf", 1, 1, hidden=8, num_transforms=1)
        >>> post = DirectPosterior(q, BoxUniform([-3.0], [3.0]), torch.zeros(1))
        >>> torch.equal(post.sample(5, seed=1), post.sample(5, seed=1))
        True
    """

    def __init__(self, estimator: ConditionalDensityEstimator, prior: Prior, x0: Tensor,
                 history: pd.DataFrame | None = None, sample_with: str = "auto", max_draws_factor: int = 1000,
                 min_acceptance: float = 0.01, chains: int = 100, mass_draws: int | None = None,
                 spec: dict | None = None):
        super().__init__(prior, x0, history, spec)
        if sample_with not in ("auto", "rejection", "mcmc"):
            raise ValueError(f"sample_with must be 'auto', 'rejection' or 'mcmc'; got {sample_with!r}")
        kind = getattr(estimator, "capabilities", Capabilities()).log_prob
        self._ode = kind == "ode"
        if sample_with == "mcmc" and self._ode:
            raise ValueError(f"sample_with='mcmc' needs a cheap log-density, but {type(estimator).__name__} "
                             "computes it by an ODE solve (capabilities.log_prob='ode'); use "
                             "sample_with='rejection' or 'auto'")
        self.estimator = estimator
        self.sample_with, self.max_draws_factor, self.min_acceptance = sample_with, max_draws_factor, min_acceptance
        self.chains = check_int("chains", chains, minimum=0)
        self.mass_draws = MASS_DRAWS[kind] if mass_draws is None else check_int("mass_draws", mass_draws, minimum=0)
        self._log_mass: float | None = None
        self._mcmc_start: SliceSampler | None = None
        self._live: SliceSampler | None = None
        self.last_acceptance: float = math.nan
        self.last_method: str = ""

    def _propose(self, generator: torch.Generator) -> Callable[[int], Tensor]:
        def propose(m: int) -> Tensor:
            # q draws on the network's device, kept (or rejected) on the CPU with the prior
            with torch.no_grad():
                return self.estimator.sample(m, self._x0.to(module_device(self.estimator)), generator=generator).cpu()
        return propose

    def _estimator_log_prob(self, theta: Tensor) -> Tensor:
        """log q(θ|x0) computed on the network's device, returned on θ's."""
        device = module_device(self.estimator)
        x0 = self._x0.to(device).expand(len(theta), -1)
        return self.estimator.log_prob(theta.to(device), x0).to(theta.device)

    def _potential(self, theta: Tensor) -> Tensor:
        inside = self.prior.support_contains(theta)
        lp = self._estimator_log_prob(theta)
        return torch.where(inside, lp, -math.inf)

    def _snapshot(self) -> SliceSampler:
        # a fixed stream, not the caller's: the snapshot must not depend on which call built it
        if self._mcmc_start is None:
            generator = torch.Generator(device="cpu").manual_seed(0)
            pool = self.prior.sample((self.chains * 20,), generator=generator)
            with torch.no_grad():
                pool = pool[torch.isfinite(self._potential(pool))]
            if not len(pool):
                raise RuntimeError("no starting point with finite posterior density inside the prior's support")
            init = pool[torch.randint(len(pool), (self.chains,), generator=generator, device="cpu")]
            sampler = SliceSampler(self._potential, init, seed=generator)
            sampler.warm_up()
            self._mcmc_start = sampler
        return self._mcmc_start

    def _mcmc(self, n: int, generator: torch.Generator | None, per_chain: bool) -> Tensor:
        if generator is not None or self._live is None:
            self._live = self._snapshot().copy()
            if generator is not None:
                self._live.generator = generator
        self.last_method = "mcmc"
        return self._live.sample(n, per_chain=per_chain)

    def _draw(self, n: int, seed: Seed, per_chain: bool, chains: int | None = None) -> Tensor:
        if self.sample_with == "mcmc":
            self._check_chains(chains, self.chains)
            return self._mcmc(n, None if seed is None else torch_generator(seed), per_chain)
        generator = torch_generator(seed)
        factor = self.max_draws_factor if self.sample_with == "rejection" else 1 / self.min_acceptance
        try:
            draws, rate = rejection_sample(self._propose(generator), self.prior.support_contains, n,
                                           max_draws=max(int(factor * n), 10_000))
        except LowAcceptanceError as e:
            self.last_acceptance = e.accepted / max(e.drawn, 1)
            if self._ode:  # whichever mode was asked for: the default advice would suggest MCMC
                raise LowAcceptanceError(e.accepted, e.wanted, e.drawn, e.partial, advice=_ODE_ADVICE) from e
            if self.sample_with == "rejection":
                raise
            warnings.warn(f"rejection acceptance {self.last_acceptance:.2%} is below {self.min_acceptance:.0%}: "
                          "sampling q(θ|x0) inside the support by slice sampling instead", stacklevel=4)
            self._check_chains(chains, self.chains)
            return self._mcmc(n, None if seed is None else generator, per_chain)
        self.last_acceptance, self.last_method = rate, "rejection"
        return draws

    def last_health(self) -> ChainHealth:
        """Nested R-hat and bulk ESS of the last draw's slice-sampling chains (unthinned trace);
        NaN when the last draw was by rejection. See ``sbi_lite.samplers.health``."""
        if self.last_method != "mcmc" or self._live is None:
            return ChainHealth(math.nan, math.nan)
        return self._live.last_health()

    def _sample(self, n: int, seed: Seed) -> Tensor:
        return self._draw(n, seed, per_chain=False)

    def _arviz_draws(self, n: int, seed: Seed, chains: int | None) -> Tensor:
        return self._draw(n, seed, per_chain=True, chains=chains)

    def acceptance_rate(self, n: int | None = None, *, seed: Seed = 0) -> float:
        """Fraction of q(θ|x0)'s mass inside the prior's support (Monte Carlo over n draws,
        default ``mass_draws``)."""
        n = self.mass_draws if n is None else check_int("n", n, minimum=0)
        draws = self._propose(torch_generator(seed))(n)
        return float(self.prior.support_contains(draws).float().mean())

    def _log_prob(self, theta: Tensor) -> Tensor:
        """Normalised log-density; the mass inside the support is estimated once, on first use,
        from ``mass_draws`` draws (its Monte Carlo error is a constant offset: see ``MASS_DRAWS``)."""
        if self._log_mass is None:
            self._log_mass = math.log(max(self.acceptance_rate(), 1e-12))
        lp = self._estimator_log_prob(theta) - self._log_mass
        return torch.where(self.prior.support_contains(theta), lp, -math.inf)

    def _unshare(self) -> None:
        if self._live is not None:
            self._live = self._live.copy()

    def _save_parts(self) -> tuple[str, nn.Module, dict[str, Any], dict[str, Any]]:
        settings = {"sample_with": self.sample_with, "max_draws_factor": self.max_draws_factor,
                    "min_acceptance": self.min_acceptance, "chains": self.chains, "mass_draws": self.mass_draws}
        state = {"log_mass": self._log_mass,
                 "mcmc": None if self._mcmc_start is None else self._mcmc_start.state()}
        return "direct", self.estimator, settings, state

    def _restore(self, state: dict[str, Any]) -> None:
        """Take back what ``_save_parts`` recorded (used by ``sbi_lite.load``)."""
        self._log_mass = state["log_mass"]
        if state["mcmc"] is not None:
            self._mcmc_start = SliceSampler.from_state(self._potential, state["mcmc"])
