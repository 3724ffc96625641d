"""name -> builder of a conditional density estimator, with its capabilities.

Example:
    >>> import torch
    >>> q = build("nsf", input_dim=2, context_dim=3)
    >>> q.log_prob(torch.randn(4, 2), torch.randn(4, 3)).shape
    torch.Size([4])
"""

from __future__ import annotations

from functools import partial
from typing import Callable

from sbi_lite.density.aem import AEM
from sbi_lite.density.base import ConditionalDensityEstimator
from sbi_lite.density.ensemble import Ensemble
from sbi_lite.density.score import ScoreEstimator
from sbi_lite.density.zoo import build_maf, build_nsf
from sbi_lite.devices import seeded_rng

__all__ = ["REGISTRY", "build", "register"]

REGISTRY: dict[str, Callable[..., ConditionalDensityEstimator]] = {
    "maf": build_maf,
    "nsf": build_nsf,
    "nsf_ar": partial(build_nsf, autoregressive=True),
    "aem": AEM,
    "diffusion": ScoreEstimator,
    "ensemble": Ensemble,
}


def register(name: str, builder: Callable[..., ConditionalDensityEstimator]) -> None:
    """Add an estimator: ``builder(input_dim, context_dim, **hyperparameters)``."""
    REGISTRY[name] = builder


def build(name: str, input_dim: int, context_dim: int, *, seed: int = 0,
          **hyperparameters) -> ConditionalDensityEstimator:
    """Build the registered estimator ``name`` for q(inputs (D,) | context (C,)).

    Args:
        name: one of ``REGISTRY`` ("maf", "nsf", "nsf_ar", ...).
        input_dim, context_dim: D and C (both ≥ 1).
        seed: fixes the initial weights and any random permutations (same seed, same network).
        **hyperparameters: passed to the builder (e.g. ``hidden``, ``bins``, ``bounds``).
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown density estimator {name!r}; choose one of {sorted(REGISTRY)}")
    if input_dim < 1 or context_dim < 1:
        raise ValueError(f"input_dim and context_dim must be >= 1; got {input_dim}, {context_dim}")
    with seeded_rng(seed):  # the caller's global RNGs are left untouched
        return REGISTRY[name](input_dim, context_dim, seed=seed, **hyperparameters)
