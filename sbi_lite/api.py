"""``infer(simulator, prior, x0)``: the one call a scientist needs."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from sbi_lite.density import REGISTRY
from sbi_lite.inference import METHODS, RoundConfig, run_rounds
from sbi_lite.posterior import Posterior
from sbi_lite.priors import as_prior
from sbi_lite.seeding import Seed
from sbi_lite.train import TrainConfig

__all__ = ["infer"]


def infer(
    simulator: Callable,
    prior,
    x0,
    *,
    method: str = "snpe",
    estimator: str | None = None,
    rounds: int = 10,
    simulations_per_round: int = 1000,
    num_atoms: int = 100,
    seed: Seed = None,
    n_jobs: int = 1,
    progress: bool = True,
    leakage_free: bool = False,
    estimator_kwargs: dict | None = None,
    train_config: TrainConfig | None = None,
    chains: int = 100,
    sample_with: str = "auto",
) -> Posterior:
    """Sequential simulation-based inference of p(θ | x0).

    Args:
        simulator: θ (n, d) -> x (n, d_x), numpy or torch; may take ``rng=`` (numpy Generator).
            Failed runs (NaN rows or exceptions) are dropped and redrawn.
        prior: an sbi_lite prior or any torch Distribution.
        x0: the observation (d_x,).
        method: "snpe" (SNPE-C / atomic APT), "sre" (contrastive ratio estimation) or "snl".
        estimator: density estimator for "snpe"/"snl" ("maf" by default, as in the paper; "nsf",
            "nsf_ar" or any registered name).
        rounds, simulations_per_round: the simulation budget.
        num_atoms: K of the contrastive loss (2 ≤ K ≤ batch size 100).
        seed: same seed, same posterior, whatever ``n_jobs``.
        n_jobs: simulation workers.
        progress: progress bars over rounds and simulations.
        leakage_free: SNPE-C with a box prior: an NSF whose support IS the prior's box, so no
            posterior mass leaks outside it and rejection never rejects.
        estimator_kwargs: hyperparameters for the estimator builder.
        train_config: training settings (default: the paper's, with the method's gradient
            clipping and the estimator's declared weight averaging, ``capabilities.ema``).
        chains: slice-sampling chains for SRE and SNL (and SNPE-C when it samples by MCMC).
        sample_with: how SNPE-C draws from q(θ|x0) inside the prior's support: "rejection",
            "mcmc" (the paper's SNPE-C + MCMC control) or "auto" (rejection, switching to MCMC
            when acceptance falls below 1%).

    Returns:
        The last round's posterior, with ``.history`` (one row per round).

    Example:
        >>> from sbi_lite import BoxUniform
        >>> prior = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))
        >>> post = infer(lambda t, rng: t + 0.1 * rng.standard_normal(t.shape), prior, [0.5, -0.5],
        ...              rounds=1, simulations_per_round=300, seed=0, progress=False,
        ...              train_config=TrainConfig(max_epochs=5))
        >>> post.sample(10, seed=0).shape
        torch.Size([10, 2])
    """
    if not callable(simulator):
        raise TypeError(f"simulator must be callable, got {type(simulator).__name__}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    prior = as_prior(prior)
    x0 = torch.as_tensor(np.asarray(x0, dtype=np.float64), dtype=torch.get_default_dtype())
    if x0.dim() != 1:
        if x0.dim() == 2 and x0.shape[0] == 1:
            x0 = x0[0]
        else:
            raise ValueError(f"x0 must be one observation of shape (d_x,); got {tuple(x0.shape)}")
    if not torch.isfinite(x0).all():
        raise ValueError(f"x0 contains non-finite values: {x0.tolist()}")
    kwargs = dict(estimator_kwargs or {})
    if leakage_free:
        if method != "snpe":
            raise ValueError("leakage_free applies to method='snpe' (MCMC methods never leave the support)")
        if prior.bounds is None:
            raise ValueError(f"leakage_free needs a box prior; {prior!r} has no box support")
        estimator = estimator or "nsf"
        kwargs.setdefault("bounds", prior.bounds)
    if method == "sre" and estimator is not None:
        raise ValueError("method='sre' trains a classifier; 'estimator' does not apply")
    if estimator is not None and estimator not in REGISTRY:  # before any simulation is spent
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {sorted(REGISTRY)}")
    capabilities = getattr(REGISTRY.get(estimator or ""), "capabilities", None)
    if method == "snl" and capabilities is not None and capabilities.log_prob == "ode":
        raise ValueError(f"method='snl' evaluates q(x0|θ) at every MCMC step, and estimator {estimator!r} computes "
                         "its log-density by an ODE solve (hundreds of network calls each); use a flow or 'aem', "
                         "or method='snpe'")
    cfg = RoundConfig(rounds=rounds, simulations_per_round=simulations_per_round, num_atoms=num_atoms,
                      estimator=estimator, estimator_kwargs=kwargs, train=train_config, n_jobs=n_jobs,
                      chains=chains, sample_with=sample_with, progress=progress)
    return run_rounds(simulator, prior, x0, METHODS[method], cfg, seed)
