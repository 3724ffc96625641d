"""Posteriors: immutable objects holding x0, with ``sample``, ``log_prob``, ``history`` and
``to_arviz``.

- ``DirectPosterior`` (SNPE-C): q(θ|x0) restricted to the prior's support, sampled by rejection;
  ``log_prob`` is normalised (q's log-density minus the log of its mass inside the support).
- ``MCMCPosterior`` (SNL, SRE): a potential log q(x0|θ) + log p(θ) or f(θ, x0) + log p(θ),
  sampled by the vectorised slice sampler; ``log_prob`` is UNNORMALISED (the potential).
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from typing import Callable

import pandas as pd
import torch
from torch import Tensor

from sbi_lite.density.base import ConditionalDensityEstimator
from sbi_lite.priors import Prior
from sbi_lite.samplers import LowAcceptanceError, SliceSampler, rejection_sample
from sbi_lite.seeding import Seed, torch_generator

__all__ = ["Posterior", "DirectPosterior", "MCMCPosterior"]


class Posterior(ABC):
    """Common surface. ``history`` has one row per round of the inference that made it."""

    def __init__(self, prior: Prior, x0: Tensor, history: pd.DataFrame | None = None):
        self.prior = prior
        self._x0 = x0.clone()
        self._history = pd.DataFrame() if history is None else history.copy()

    @property
    def x0(self) -> Tensor:
        return self._x0.clone()

    @property
    def history(self) -> pd.DataFrame:
        return self._history.copy()

    def with_history(self, history: pd.DataFrame) -> Posterior:
        """A copy of this posterior carrying ``history``."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._history = history.copy()
        return new

    @abstractmethod
    def sample(self, n: int, *, seed: Seed = None) -> Tensor:
        """(n, d) draws from the posterior at x0."""

    @abstractmethod
    def log_prob(self, theta: Tensor) -> Tensor:
        """Log posterior density (B, d) -> (B,)."""

    def to_arviz(self, n: int = 2000, *, chains: int = 4, seed: Seed = None):
        """Samples as an ``arviz.InferenceData`` (chains × draws), for ESS, R-hat and plots."""
        import arviz as az

        draws = self.sample(n, seed=seed)
        per = n // chains
        arr = draws[: per * chains].reshape(chains, per, -1).numpy()
        return az.from_dict(posterior={"theta": arr}, coords={"dim": list(range(arr.shape[-1]))},
                            dims={"theta": ["dim"]})


class DirectPosterior(Posterior):
    """q(θ|x0) ⟂ the prior's support.

    Args:
        estimator: q(θ|x), with ``log_prob`` and ``sample``.
        prior: supplies ``support_contains`` and the dimension.
        x0: (c,) observation.
        sample_with: "rejection" (i.i.d. draws of q kept inside the support; raises
            ``LowAcceptanceError`` after ``max_draws_factor`` draws per sample), "mcmc" (slice
            sampling of log q(θ|x0) restricted to the support), or "auto" (rejection, switching to
            MCMC with a warning once acceptance is below ``min_acceptance``).
        chains: slice-sampling chains when MCMC is used.
    """

    def __init__(self, estimator: ConditionalDensityEstimator, prior: Prior, x0: Tensor,
                 history: pd.DataFrame | None = None, sample_with: str = "auto", max_draws_factor: int = 1000,
                 min_acceptance: float = 0.01, chains: int = 100):
        super().__init__(prior, x0, history)
        if sample_with not in ("auto", "rejection", "mcmc"):
            raise ValueError(f"sample_with must be 'auto', 'rejection' or 'mcmc'; got {sample_with!r}")
        self.estimator = estimator
        self.sample_with, self.max_draws_factor, self.min_acceptance = sample_with, max_draws_factor, min_acceptance
        self.chains = chains
        self._log_mass: float | None = None
        self._sampler: SliceSampler | None = None
        self.last_acceptance: float = math.nan
        self.last_method: str = ""

    def _propose(self, generator: torch.Generator) -> Callable[[int], Tensor]:
        def propose(m: int) -> Tensor:
            with torch.no_grad():
                return self.estimator.sample(m, self._x0, generator=generator)
        return propose

    def _potential(self, theta: Tensor) -> Tensor:
        inside = self.prior.support_contains(theta)
        lp = self.estimator.log_prob(theta, self._x0.expand(len(theta), -1))
        return torch.where(inside, lp, -math.inf)

    def _mcmc(self, n: int, generator: torch.Generator, start: Tensor | None) -> Tensor:
        if self._sampler is None:
            pool = start if start is not None and len(start) else self.prior.sample((self.chains * 20,), generator=generator)
            with torch.no_grad():
                pool = pool[torch.isfinite(self._potential(pool))]
            if not len(pool):
                raise RuntimeError("no starting point with finite posterior density inside the prior's support")
            init = pool[torch.randint(len(pool), (self.chains,), generator=generator)]
            self._sampler = SliceSampler(self._potential, init, seed=generator)
        else:
            self._sampler.generator = generator
        self.last_method = "mcmc"
        return self._sampler.sample(n)

    def sample(self, n: int, *, seed: Seed = None) -> Tensor:
        """(n, d) draws from q(θ|x0) inside the prior's support."""
        generator = torch_generator(seed)
        if self.sample_with == "mcmc":
            return self._mcmc(n, generator, None)
        factor = self.max_draws_factor if self.sample_with == "rejection" else 1 / self.min_acceptance
        try:
            draws, rate = rejection_sample(self._propose(generator), self.prior.support_contains, n,
                                           max_draws=max(int(factor * n), 10_000))
        except LowAcceptanceError as e:
            self.last_acceptance = e.accepted / max(e.drawn, 1)
            if self.sample_with == "rejection":
                raise
            warnings.warn(f"rejection acceptance {self.last_acceptance:.2%} is below {self.min_acceptance:.0%}: "
                          "sampling q(θ|x0) inside the support by slice sampling instead", stacklevel=2)
            return self._mcmc(n, generator, e.partial)
        self.last_acceptance, self.last_method = rate, "rejection"
        return draws

    def acceptance_rate(self, n: int = 100_000, *, seed: Seed = 0) -> float:
        """Fraction of q(θ|x0)'s mass inside the prior's support (Monte Carlo over n draws)."""
        draws = self._propose(torch_generator(seed))(n)
        return float(self.prior.support_contains(draws).float().mean())

    def log_prob(self, theta: Tensor) -> Tensor:
        """Normalised log-density (B, d) -> (B,); −inf outside the support."""
        if self._log_mass is None:
            self._log_mass = math.log(max(self.acceptance_rate(), 1e-12))
        theta = torch.as_tensor(theta, dtype=torch.get_default_dtype()).reshape(-1, self.prior.dim)
        with torch.no_grad():
            lp = self.estimator.log_prob(theta, self._x0.expand(len(theta), -1)) - self._log_mass
        return torch.where(self.prior.support_contains(theta), lp, -math.inf)


class MCMCPosterior(Posterior):
    """A posterior known through an unnormalised potential, sampled by slice sampling.

    Args:
        potential: θ (B, d) -> log p(θ|x0) + const (B,).
        sampler: a ``SliceSampler`` already holding this potential (chains persist across rounds).
        thin: sweeps between kept draws.
    """

    def __init__(self, potential: Callable[[Tensor], Tensor], prior: Prior, x0: Tensor, sampler: SliceSampler,
                 history: pd.DataFrame | None = None, thin: int = 10):
        super().__init__(prior, x0, history)
        self.potential, self.sampler, self.thin = potential, sampler, thin

    def sample(self, n: int, *, seed: Seed = None) -> Tensor:
        """(n, d) draws; a ``seed`` reseeds the chains' stream before sampling."""
        if seed is not None:
            self.sampler.generator = torch_generator(seed)
        return self.sampler.sample(n, thin=self.thin)

    def to_arviz(self, n: int = 2000, *, chains: int | None = None, seed: Seed = None):
        """The slice sampler's real chains as ``arviz.InferenceData`` (so R-hat and ESS mean
        what they say); ``chains`` is fixed by the sampler and ignored."""
        import arviz as az

        if seed is not None:
            self.sampler.generator = torch_generator(seed)
        draws = self.sampler.sample(n, thin=self.thin, per_chain=True).numpy()
        return az.from_dict(posterior={"theta": draws}, coords={"dim": list(range(draws.shape[-1]))},
                            dims={"theta": ["dim"]})

    def log_prob(self, theta: Tensor) -> Tensor:
        """UNNORMALISED log posterior (B, d) -> (B,): the potential."""
        with torch.no_grad():
            return self.potential(torch.as_tensor(theta, dtype=torch.get_default_dtype()))
