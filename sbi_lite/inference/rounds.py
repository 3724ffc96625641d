"""Algorithm 1: propose → simulate → aggregate → train → posterior, round after round.

This is the only place where the stages meet, and where the one backward arrow closes: the
posterior becomes the next round's proposal. All rounds' (θ, x) are kept with their round index.
Failed simulations are dropped and θ redrawn from the same proposal until the round is full
(the paper's rule), within a bounded number of attempts.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from sbi_lite.inference.methods import Method
from sbi_lite.posterior import DirectPosterior, MCMCPosterior, Posterior
from sbi_lite.priors import Prior
from sbi_lite.samplers import SliceSampler, rejection_sample
from sbi_lite.seeding import spawn_int
from sbi_lite.simulate import simulate
from sbi_lite.train import TrainConfig, train

__all__ = ["RoundConfig", "RoundStore", "run_rounds"]


@dataclass(frozen=True)
class RoundConfig:
    """Settings of the round loop (see ``infer`` for their meaning)."""

    rounds: int = 10
    simulations_per_round: int = 1000
    num_atoms: int = 100
    estimator: str | None = None
    estimator_kwargs: dict = field(default_factory=dict)
    train: TrainConfig | None = None  # None: the paper's settings, the method's clipping, the estimator's EMA
    n_jobs: int = 1
    chains: int = 100
    thin: int = 10
    max_attempts: int = 10
    sample_with: str = "auto"
    progress: bool = True

    def __post_init__(self):
        if self.rounds < 1 or self.simulations_per_round < 2:
            raise ValueError(f"need rounds >= 1 and simulations_per_round >= 2; got {self.rounds}, "
                             f"{self.simulations_per_round}")
        if self.num_atoms < 2:
            raise ValueError(f"num_atoms must be >= 2, got {self.num_atoms}")


@dataclass
class RoundStore:
    """Every simulated pair, with the round (and so the proposal) it came from."""

    theta: list[Tensor] = field(default_factory=list)
    x: list[Tensor] = field(default_factory=list)
    round: list[Tensor] = field(default_factory=list)

    def add(self, theta: Tensor, x: Tensor, r: int) -> None:
        self.theta.append(theta)
        self.x.append(x)
        self.round.append(torch.full((len(theta),), r))

    def all(self) -> tuple[Tensor, Tensor]:
        return torch.cat(self.theta), torch.cat(self.x)


def _simulate_full(simulator, propose: Callable[[int], Tensor], n: int, seed: int, cfg: RoundConfig):
    """n successful simulations, redrawing θ for failed runs.

    Returns θ (n, d), x (n, d_x), the number of failed runs, and seconds spent proposing and
    simulating.
    """
    thetas, xs, failed, drawn, errors = [], [], 0, 0, {}
    t_propose = t_simulate = 0.0
    for attempt in range(cfg.max_attempts):
        need = n - sum(len(t) for t in thetas)
        if need == 0:
            break
        # ask for a few more than needed once failures are seen, to save rounds of redraws
        ask = need if drawn == 0 else math.ceil(need / max(1 - failed / drawn, 0.05))
        t0 = time.perf_counter()
        theta = propose(ask)
        t_propose += time.perf_counter() - t0
        sims = simulate(simulator, theta, seed=seed + attempt, n_jobs=cfg.n_jobs, progress=cfg.progress)
        t_simulate += sims.seconds
        ok_theta, ok_x = sims.valid()
        thetas.append(ok_theta[:need])
        xs.append(ok_x[:need])
        failed += sims.n_failed
        drawn += ask
        for k, v in sims.errors.items():
            errors[k] = errors.get(k, 0) + v
    got = sum(len(t) for t in thetas)
    if got < n:
        raise RuntimeError(
            f"only {got} of {n} simulations succeeded after {cfg.max_attempts} attempts "
            f"(failure fraction {failed / max(drawn, 1):.1%}, {errors})")
    return torch.cat(thetas), torch.cat(xs), failed, t_propose, t_simulate


def run_rounds(simulator, prior: Prior, x0: Tensor, method: Method, cfg: RoundConfig, seed) -> Posterior:
    """Run ``cfg.rounds`` rounds of ``method``; return the last posterior with its history."""
    from tqdm.auto import tqdm

    seeds = np.random.SeedSequence(spawn_int(seed)).generate_state(4 * cfg.rounds + 2, np.uint32)
    net = None
    posterior: Posterior | None = None
    sampler: SliceSampler | None = None
    store = RoundStore()
    rows = []
    gen = torch.Generator().manual_seed(int(seeds[-1]))
    for r in tqdm(range(cfg.rounds), desc=f"{method.name} rounds", disable=not cfg.progress):
        s_sim, s_train, s_prop, s_net = (int(v) for v in seeds[4 * r:4 * r + 4])
        t0 = time.perf_counter()
        if posterior is None:
            def propose(m):
                return prior.sample((m,), generator=gen)
        elif method.direct and not method.contrastive(net):
            propose = truncated_prior(prior, posterior.sample(10_000, seed=s_prop), gen)
        else:
            def propose(m, _p=posterior, _s=s_prop):
                return _p.sample(m, seed=_s + m)
        t_setup = time.perf_counter() - t0  # the truncated prior's 10,000 posterior draws count as proposing
        theta, x, failed, t_prop, t_sim = _simulate_full(simulator, propose, cfg.simulations_per_round, s_sim, cfg)
        t_prop += t_setup
        direct = isinstance(posterior, DirectPosterior)
        acceptance = posterior.last_acceptance if direct else math.nan
        proposal = ("prior" if posterior is None else "truncated prior" if direct and not method.contrastive(net)
                    else posterior.last_method if direct else "mcmc")
        if r == 0 and x.shape[1] != x0.shape[0]:
            raise ValueError(f"x0 has {x0.shape[0]} entries but the simulator returns {x.shape[1]}")
        store.add(theta, x, r)
        if net is None:
            net = method.build(prior, x.shape[1], cfg.estimator, s_net, **cfg.estimator_kwargs)
            method.standardize(net, prior, theta, x)
            train_cfg = cfg.train or method.train_config(net)
        t1 = time.perf_counter()
        hist = train(net, method.loss(net, prior, r, cfg.num_atoms), store.all(), config=train_cfg, seed=s_train)
        t2 = time.perf_counter()
        spec = method.spec(prior, x.shape[1], cfg.estimator, cfg.estimator_kwargs)
        if method.direct:
            posterior = DirectPosterior(net, prior, x0, sample_with=cfg.sample_with, chains=cfg.chains, spec=spec)
        else:
            potential = method.potential(net, prior, x0)
            if sampler is None:
                init = _initial_points(prior, potential, cfg.chains, gen)
                sampler = SliceSampler(potential, init, seed=s_prop)
            else:
                sampler = posterior.sampler  # a copy of the last posterior's chains, where this round's proposals left them
                sampler.set_potential(potential)
            posterior = MCMCPosterior(potential, prior, x0, sampler, thin=cfg.thin, spec=spec)
        rows.append({"round": r + 1, "proposal": proposal, "simulations": len(theta), "failed": failed, "epochs": hist.epochs,
                     "best_validation_loss": hist.best_validation_loss, "acceptance_rate": acceptance,
                     "seconds_propose": t_prop, "seconds_simulate": t_sim, "seconds_train": t2 - t1, "seconds_total": time.perf_counter() - t0})
    return posterior.with_history(pd.DataFrame(rows))


def truncated_prior(prior: Prior, posterior_draws: Tensor, gen: torch.Generator, *, tail: float = 1e-3,
                    margin: float = 0.1) -> Callable[[int], Tensor]:
    """Proposal: the prior restricted to a box holding the current posterior's mass.

    The box spans the [tail, 1 − tail] quantiles of posterior draws, widened by ``margin`` of its
    width on every side. Because the proposal is the prior times an indicator that (nearly)
    contains the posterior, maximum-likelihood training on all rounds' pairs stays unbiased
    (truncated sequential NPE, Deistler et al. 2022) — no atomic correction is needed.
    """
    low, high = posterior_draws.quantile(tail, 0), posterior_draws.quantile(1 - tail, 0)
    pad = margin * (high - low)
    low, high = low - pad, high + pad

    def inside(theta: Tensor) -> Tensor:
        return ((theta >= low) & (theta <= high)).all(-1)

    def propose(m: int) -> Tensor:
        return rejection_sample(lambda k: prior.sample((k,), generator=gen), inside, m)[0]

    return propose


def _initial_points(prior: Prior, potential, chains: int, gen: torch.Generator) -> Tensor:
    """Chains start at prior draws of finite potential."""
    cand = prior.sample((chains * 20,), generator=gen)
    with torch.no_grad():
        ok = torch.isfinite(potential(cand))
    if ok.sum() < chains:
        raise RuntimeError("could not find starting points with finite posterior potential")
    return cand[ok][:chains]
