"""The posterior surface shared by every method: ``sample``, ``log_prob``, ``history``,
``to_arviz`` and ``save``, with the argument checks done once, here.

Devices: the network computes on its own device (move it, or pass ``device=`` to ``infer`` or
``sbi_lite.load``); draws come back on the CPU, where simulators, numpy and the diagnostics are;
``log_prob`` answers on θ's device. x0, the prior and the samplers' chains stay on the CPU.
"""

from __future__ import annotations

import copy
import json
import math
import os
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from sbi_lite.posterior import fileformat as fmt
from sbi_lite.checks import check_int
from sbi_lite.priors import Prior
from sbi_lite.seeding import Seed

__all__ = ["Posterior"]


def _to_idata(draws: np.ndarray):
    import arviz as az

    return az.from_dict(posterior={"theta": draws}, coords={"dim": list(range(draws.shape[-1]))},
                        dims={"theta": ["dim"]})


class Posterior(ABC):
    """Common surface. ``history`` has one row per round of the inference that made it.

    Subclasses implement ``_sample`` and ``_log_prob`` on validated arguments, and ``_save_parts``.

    Args:
        prior: the prior (its ``dim`` is d).
        x0: (c,) observation.
        history: one row per round (copied).
        spec: how the network was built (``Method.spec``): what ``save`` records so that
            ``sbi_lite.load`` can rebuild it; None for posteriors built by hand (they cannot be saved).
    """

    def __init__(self, prior: Prior, x0: Tensor, history: pd.DataFrame | None = None, spec: dict | None = None):
        self.prior = prior
        self._x0 = x0.clone()
        self._history = pd.DataFrame() if history is None else history.copy()
        self.spec = copy.deepcopy(spec)

    @property
    def x0(self) -> Tensor:
        return self._x0.clone()

    @property
    def history(self) -> pd.DataFrame:
        return self._history.copy()

    def with_history(self, history: pd.DataFrame) -> Posterior:
        """A copy of this posterior carrying ``history``; the two share no sampler state."""
        new = copy.copy(self)
        new._history = history.copy()
        new._unshare()
        return new

    def _unshare(self) -> None:
        """Replace mutable state shared with the original after a shallow copy."""

    def sample(self, n: int, *, seed: Seed = None) -> Tensor:
        """(n, d) draws from the posterior at x0, on the CPU whatever the network's device;
        ``n = 0`` gives an empty (0, d) tensor.

        The same ``seed`` gives the same draws, whatever was sampled before; ``seed=None``
        continues MCMC chains from where the last call left them.

        Raises:
            TypeError, ValueError: ``n`` is not a non-negative int (bools are refused).
        """
        n = check_int("n", n, minimum=0)
        if n == 0:
            return torch.empty(0, self.prior.dim, device="cpu")
        return self._sample(n, seed).cpu()

    @abstractmethod
    def _sample(self, n: int, seed: Seed) -> Tensor:
        """(n, d) draws, n ≥ 1."""

    def log_prob(self, theta: Tensor) -> Tensor:
        """Log posterior density: θ (B, d) -> (B,), or (d,) -> (), on θ's device (a list: the
        CPU); −inf where θ is outside the prior's support or not finite (±inf or NaN entries).
        Normalised for ``DirectPosterior``, UNNORMALISED (the potential) for ``MCMCPosterior``.

        Raises:
            ValueError: θ has another shape (the message names it and d).
        """
        if isinstance(theta, Tensor):
            theta = theta.to(torch.get_default_dtype())
        else:  # not on a global default device: lists and arrays become CPU tensors
            theta = torch.as_tensor(theta, dtype=torch.get_default_dtype(), device="cpu")
        d = self.prior.dim
        if theta.dim() not in (1, 2) or theta.shape[-1] != d:
            raise ValueError(f"theta must have shape (B, {d}) or ({d},); got {tuple(theta.shape)}")
        batch = theta.reshape(-1, d)
        out = torch.full((len(batch),), -math.inf, device=batch.device)
        finite = torch.isfinite(batch).all(-1)
        if finite.any():
            with torch.no_grad():
                out[finite] = self._log_prob(batch[finite]).to(out)
        return out[0] if theta.dim() == 1 else out

    @abstractmethod
    def _log_prob(self, theta: Tensor) -> Tensor:
        """(B, d) finite θ -> (B,)."""

    def to_arviz(self, n: int = 2000, *, chains: int | None = None, seed: Seed = None):
        """n draws as an ``arviz.InferenceData`` (chains × draws), for ESS, R-hat and plots.

        Draws made by MCMC come as the sampler's real chains (⌈n / C⌉ draws from each of its C
        chains), so R-hat and ESS mean what they say; ``chains`` must then be omitted or equal C
        (ValueError otherwise). I.i.d. draws (rejection) are split into ``chains`` pseudo-chains
        (default 4).
        """
        n = check_int("n", n, minimum=0)
        if n == 0:
            raise ValueError("to_arviz needs n >= 1 draws; got n=0")
        draws = self._arviz_draws(n, seed, chains).cpu()
        if draws.dim() == 3:
            return _to_idata(draws.numpy())
        chains = 4 if chains is None else check_int("chains", chains, minimum=0)
        if not 1 <= chains <= n:
            raise ValueError(f"chains must be between 1 and n={n}; got {chains}")
        per = n // chains
        return _to_idata(draws[: per * chains].reshape(chains, per, -1).numpy())

    def _arviz_draws(self, n: int, seed: Seed, chains: int | None) -> Tensor:
        """(n, d) i.i.d. draws, or (C, ⌈n / C⌉, d) from C real chains (after ``_check_chains``)."""
        return self._sample(n, seed)

    @staticmethod
    def _check_chains(chains: int | None, actual: int) -> None:
        if chains is not None and chains != actual:
            raise ValueError(f"chains={chains!r}, but these draws come from the slice sampler's {actual} real chains "
                             "(their number is fixed when the posterior is built); omit chains")

    def save(self, path: str | os.PathLike) -> None:
        """Write this posterior to ``path`` (the format of ``sbi_lite.posterior.fileformat``);
        ``sbi_lite.load(path)`` gives it back, with the same ``log_prob`` and the same
        ``sample(n, seed=s)``.

        Raises:
            ValueError: the posterior was built by hand (no ``spec``), its estimator's keyword
                arguments are not JSON data, or its prior cannot be described by parameters
                (the message names the type). Nothing is written then.

        Example: see ``sbi_lite.load``.
        """
        if self.spec is None:
            raise ValueError(f"this {type(self).__name__} has no spec (it was not built by sbi_lite.infer), so the "
                             "file could not say how to rebuild its network")
        try:
            json.dumps(self.spec)
        except TypeError as e:
            raise ValueError(f"cannot save: estimator_kwargs {self.spec['estimator_kwargs']!r} are not JSON data "
                             f"({e})") from e
        kind, net, settings, state = self._save_parts()
        config = {"posterior": kind, "spec": self.spec, "settings": settings}
        fmt.write(path, config, net.state_dict(), self.prior, self._x0, self._history, state)

    @abstractmethod
    def _save_parts(self) -> tuple[str, nn.Module, dict[str, Any], dict[str, Any]]:
        """(kind, network, JSON-able settings, state of tensors and numbers)."""
