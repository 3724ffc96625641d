"""Algorithm 1: propose → simulate → aggregate → train → posterior, round after round.

This is the only place where the stages meet, and where the one backward arrow closes: the
posterior becomes the next round's proposal. All rounds' (θ, x) are kept with their round index.
Failed simulations are dropped and θ redrawn from the same proposal until the round is full
(the paper's rule), within a bounded number of attempts.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from sbi_lite.checks import progress_enabled
from sbi_lite.diagnostics.convergence import DEFAULT_DRAWS, DEFAULT_THRESHOLD, converged, posterior_change
from sbi_lite.diagnostics.typicality import check_observation
from sbi_lite.inference.checkpoint import (check_fingerprint, read_checkpoint, training_fingerprint, upgrade_rows,
                                           upgrade_training, write_checkpoint)
from sbi_lite.inference.collect import RoundProgress, RoundSimulations, simulate_round
from sbi_lite.inference.methods import Method
from sbi_lite.inference.store import RoundStore
from sbi_lite.inference.truncation import tail_in_effect, truncated_prior
from sbi_lite.posterior import DirectPosterior, MCMCPosterior, Posterior
from sbi_lite.priors import Prior
from sbi_lite.samplers import SliceSampler
from sbi_lite.samplers.health import THRESHOLD, ChainHealth
from sbi_lite.seeding import spawn_int
from sbi_lite.simulate import simulate
from sbi_lite.simulate_backends import resolve_n_jobs
from sbi_lite.simulate_dask import dask_client
from sbi_lite.train import TrainConfig, train

__all__ = ["RoundConfig", "run_rounds"]

# posterior draws compared between rounds (history's posterior_change; stop_when_converged): the
# truncated prior's first 1,000 posterior draws, else the round's proposals (at least 100)
CHANGE_DRAWS, MIN_CHANGE_DRAWS = 1000, 100
UNRECORDED_TAIL = ("This checkpoint predates recording the truncation tail in effect: to resume it, pass "
                   "truncation_tail= the tail it ran with (by default 1e-2 for flows, 1e-3 for AEM and diffusion; "
                   "1e-3 for all before 2026-11-30).")
# the paper's burn-in, at every change of the chains' target; the first target's (chains at prior draws) always
PAPER_BURN_IN = 200
UNRECORDED_BURN_IN = (f"This checkpoint does not record burn_in, so its run burned in {PAPER_BURN_IN} sweeps every "
                      f"round: pass burn_in={PAPER_BURN_IN} to resume it.")


@dataclass(frozen=True)
class RoundConfig:
    """Settings of the round loop (see ``infer`` for their meaning)."""

    rounds: int = 10
    simulations_per_round: int = 1000
    num_atoms: int = 100
    proposal: str = "posterior"  # SNPE's later rounds: "posterior" (atomic loss) or "truncated" (prior, MLE)
    estimator: str | None = None
    estimator_kwargs: dict = field(default_factory=dict)
    train: TrainConfig | None = None  # None: the paper's settings, the method's clipping, the estimator's EMA
    train_defaults: dict = field(default_factory=dict)  # with train None: the preset's TrainConfig fields
    n_jobs: int = 1
    chains: int = 100
    burn_in: int = PAPER_BURN_IN  # sweeps burned in when a later round's target replaces the last
    thin: int = 10
    max_attempts: int = 10
    sample_with: str = "auto"
    progress: bool | None = True
    vectorized: bool = True
    backend: str | None = None
    cluster: object = None  # with backend="dask": an address or a distributed.Client
    simulation_timeout: float | None = None
    max_failure_fraction: float = 0.8
    propose_budget: float | None = 600.0
    stop_when_converged: bool | float = False
    device: str = "cpu"  # where the network trains and is evaluated; everything else stays on the CPU
    retrain_from_scratch: bool = False  # later rounds train a freshly initialised network on all pairs
    truncation_tail: float | None = None  # q's mass a truncated proposal may cut (None: truncation.DEFAULT_TAIL)

    def __post_init__(self):
        if self.rounds < 1 or self.simulations_per_round < 2:
            raise ValueError(f"need rounds >= 1 and simulations_per_round >= 2; got {self.rounds}, "
                             f"{self.simulations_per_round}")
        if self.num_atoms < 2:
            raise ValueError(f"num_atoms must be >= 2, got {self.num_atoms}")
        if not 0 < self.max_failure_fraction <= 1:
            raise ValueError(f"max_failure_fraction must be in (0, 1], got {self.max_failure_fraction}")

    def simulate_options(self) -> dict:
        """The arguments of ``simulate`` that say where and how the simulator runs."""
        return dict(n_jobs=self.n_jobs, backend=self.backend, cluster=self.cluster, timeout=self.simulation_timeout,
                    vectorized=self.vectorized)

    def fingerprint(self) -> dict[str, str]:
        """The settings that change results (not n_jobs, progress or budgets), for checkpoints."""
        # the training enters as what it resolves to (checkpoint.training_fingerprint), not as train and train_defaults
        keep = ("rounds", "simulations_per_round", "num_atoms", "proposal", "estimator", "estimator_kwargs",
                "chains", "thin", "max_attempts", "sample_with", "vectorized", "stop_when_converged", "device")
        # settings added since checkpoints were first written enter only when set, so those still resume
        # (the round loop adds the truncation tail in effect to a truncated run's)
        later = {k: repr(getattr(self, k)) for k in ("retrain_from_scratch", "truncation_tail") if getattr(self, k)}
        if self.burn_in != PAPER_BURN_IN:
            later["burn_in"] = repr(self.burn_in)
        return {**{k: repr(getattr(self, k)) for k in keep}, **later}


def run_rounds(simulator, prior: Prior, x0: Tensor, method: Method, cfg: RoundConfig, seed, *,
               initial: tuple[Tensor, Tensor] | None = None, checkpoint=None) -> Posterior:
    """Run ``cfg.rounds`` rounds of ``method``; return the last posterior with its history.

    ``initial`` pairs (θ from the prior) stand for round 1's simulations: round 1 only tops them
    up to ``simulations_per_round``. With ``checkpoint`` (a path) the run is saved after every
    round and, when the file exists, resumed from it.
    """
    if cfg.backend == "dask":  # one client (and LocalCluster, if none is given) for the whole run
        with dask_client(cfg.cluster, resolve_n_jobs(cfg.n_jobs)) as client:
            return _run_rounds(simulator, prior, x0, method, replace(cfg, cluster=client), seed, initial, checkpoint)
    return _run_rounds(simulator, prior, x0, method, cfg, seed, initial, checkpoint)


def _run_rounds(simulator, prior: Prior, x0: Tensor, method: Method, cfg: RoundConfig, seed, initial,
                checkpoint) -> Posterior:
    from tqdm.auto import tqdm

    saved = read_checkpoint(checkpoint) if checkpoint is not None else None
    fixed_seed = isinstance(seed, (int, np.integer))
    root = int(saved["root"]) if saved is not None and not fixed_seed else spawn_int(seed)
    fingerprint = {"method": method.name, "seed": repr(int(seed)) if fixed_seed else "fresh", "x0": repr(x0.tolist()),
                   "prior": repr(prior), "initial": repr(None if initial is None else len(initial[0])),
                   **cfg.fingerprint()}
    seeds = np.random.SeedSequence(root).generate_state(4 * cfg.rounds + 2, np.uint32)
    held_out_seed = int(np.random.SeedSequence(root).generate_state(4 * cfg.rounds + 3, np.uint32)[-1])
    gen = torch.Generator(device="cpu").manual_seed(int(seeds[-1]))  # proposals are drawn on the CPU
    # every mistake that can be found before round 1 is found now: the estimator's hyperparameters,
    # and the simulator's output size on one prior draw
    net = _build(method, prior, x0, cfg, int(seeds[3]))
    truncated = method.direct and cfg.proposal == "truncated"
    # the highest-density cut needs log q at many candidates: only where log q is exact and cheap
    highest_density = truncated and method.contrastive(net)
    tail = tail_in_effect(cfg.truncation_tail, highest_density) if truncated else None
    if truncated:  # the tail in effect, so that a run written under another default of it is not resumed
        fingerprint["truncation_tail"] = repr(tail)
    method_training = method.train_config(net)
    train_cfg = cfg.train or replace(method_training, **cfg.train_defaults)
    fingerprint.update(training_fingerprint(train_cfg))
    if saved is not None:
        stored = upgrade_training(saved["fingerprint"], method_training)
        if truncated and "truncation_tail" not in stored and cfg.truncation_tail is not None:
            # written before checkpoints recorded the tail in effect: the tail the caller names vouches for it
            stored["truncation_tail"] = fingerprint["truncation_tail"]
        check_fingerprint(checkpoint, stored, fingerprint, hints={"truncation_tail": UNRECORDED_TAIL,
                                                                   "burn_in": UNRECORDED_BURN_IN})
    _check_output_size(simulator, prior, x0, cfg, int(seeds[-2]))
    store, rows, sampler, start = RoundStore(), [], None, 0
    if saved is not None:
        store, rows, start = RoundStore.from_state(saved["store"]), saved["rows"], int(saved["round"])
        rows = upgrade_rows(rows, train_cfg)  # the fingerprint vouches the training is this one
        net.load_state_dict(saved["net"])
        gen.set_state(saved["generator"])
    elif initial is not None:
        store.add(*initial, 0)
    posterior: Posterior | None = None
    if start:
        if saved["sampler"]:  # the chains continue where they were, not from fresh prior draws
            sampler = SliceSampler.from_state(method.potential(net, prior, x0), saved["sampler"])
        posterior, sampler = _posterior(method, net, prior, x0, cfg, sampler, gen, 0)
    warned = False
    previous = saved.get("draws") if saved is not None else None  # the last measured posterior's draws
    # what a checkpoint holds of the rounds done (a mid-round one adds the round's progress)
    state = {"root": root, "fingerprint": fingerprint, "round": start, "store": store.state(), "rows": rows,
             "net": net.state_dict(), "sampler": sampler.state() if sampler is not None else {}}
    for r in tqdm(range(start, cfg.rounds), desc=f"{method.name} rounds", disable=not progress_enabled(cfg.progress),
                  initial=start, total=cfg.rounds):
        s_sim, s_train, s_prop, s_build = (int(v) for v in seeds[4 * r:4 * r + 4])
        t0 = time.perf_counter()
        evaluations = sampler.evaluations if sampler is not None else 0
        need = cfg.simulations_per_round - (len(initial[0]) if r == 0 and initial is not None else 0)
        draws = None  # draws of the posterior proposing this round, if it proposes from itself
        if posterior is None:
            def propose(m):
                return prior.sample((m,), generator=gen)
        elif truncated:
            truncation = posterior.sample(10_000, seed=s_prop)
            log_q = posterior._potential if highest_density else None
            propose, draws = (truncated_prior(prior, truncation, gen, log_q=log_q, tail=tail),
                               truncation[:CHANGE_DRAWS])
        else:
            def propose(m, _p=posterior, _s=s_prop):
                return _p.sample(m, seed=_s + m)
            draws = propose(max(need, MIN_CHANGE_DRAWS))  # drawn now, so that a settled run stops before simulating
            propose = _replaying(draws, propose)
        # the chains that proposed (or drew the truncation box), from the round's first draw
        health = posterior.last_health() if draws is not None else ChainHealth(math.nan, math.nan)
        _warn_unhealthy(health, r)
        # the proposing posterior's draws (truncated prior: its 10,000) count as proposing time
        t_setup = time.perf_counter() - t0
        if draws is not None:
            measured = _record_change(rows, previous, draws, int(seeds[-2]))
            previous = draws
            if measured and cfg.stop_when_converged and converged(
                    _measured(rows), threshold=_threshold(cfg.stop_when_converged, len(draws)), patience=2):
                break
        resumed = RoundProgress.from_state(saved["partial"]) if r == start and saved and saved.get("partial") else None
        save = None if checkpoint is None else (
            lambda progress: write_checkpoint(checkpoint, {**state, "generator": gen.get_state(), "draws": previous,
                                                           "partial": progress.state()}))
        sims = simulate_round(simulator, propose, need, s_sim, cfg, progress=resumed, save=save) if need > 0 else None
        if sampler is not None:  # the posterior sampled copies: go on from its chains, where the proposals left them
            sampler = posterior.sampler
        evaluations = sampler.evaluations - evaluations if sampler is not None else 0
        t_prop = t_setup + (sims.seconds_propose if sims else 0.0)
        direct = isinstance(posterior, DirectPosterior)
        acceptance = posterior.last_acceptance if direct else math.nan
        proposal = ("prior" if posterior is None else "truncated prior" if truncated
                    else posterior.last_method if direct else "mcmc")
        if sims is not None:
            store.add(sims.theta, sims.x, r)
            warned = warned or _warn_exceptions(sims, r)
        typicality = _x0_typicality(store.all()[1], x0, s_prop) if r == 0 else math.nan
        if r == 0:
            method.standardize(net, prior, *store.all())
        elif cfg.retrain_from_scratch:  # same pre-processing (round 1's), fresh weights
            net = _build(method, prior, x0, cfg, s_build)
            method.standardize(net, prior, *store.first_round())
        t1 = time.perf_counter()
        hist = train(net, method.loss(net, prior, r, cfg.num_atoms, atomic=not truncated), store.all(), config=train_cfg,
                     seed=s_train, progress=progress_enabled(cfg.progress),
                     validation=store.held_out(train_cfg.validation_fraction, held_out_seed))
        t2 = time.perf_counter()
        posterior, sampler = _posterior(method, net, prior, x0, cfg, sampler, gen, s_prop)
        rows.append({"round": r + 1, "proposal": proposal, "simulations": len(sims.theta) if sims else 0,
                     "failed": sims.failed if sims else 0, "failure_reasons": sims.reasons() if sims else "",
                     "training": train_cfg.brief(), "epochs": hist.epochs,
                     "best_validation_loss": hist.best_validation_loss,
                     "acceptance_rate": acceptance,
                     "potential_evaluations": evaluations, "mcmc_rhat": health.rhat, "mcmc_ess": health.ess,
                     "posterior_change": math.nan,
                     "x0_typicality_p": typicality,
                     "propose_over_budget": cfg.propose_budget is not None and t_prop > cfg.propose_budget,
                     "seconds_propose": t_prop, "seconds_simulate": sims.seconds_simulate if sims else 0.0,
                     "seconds_train": t2 - t1, "seconds_total": time.perf_counter() - t0})
        state = {"root": root, "fingerprint": fingerprint, "round": r + 1, "store": store.state(), "rows": rows,
                 "net": net.state_dict(), "sampler": sampler.state() if sampler is not None else {}}
        if checkpoint is not None:
            write_checkpoint(checkpoint, {**state, "generator": gen.get_state(), "draws": previous})
    else:  # every round ran: measure how far the last one moved the posterior
        if previous is not None and math.isnan(rows[-1]["posterior_change"]):
            _record_change(rows, previous, posterior.sample(len(previous), seed=int(seeds[-2]) + 1), int(seeds[-2]))
    return posterior.with_history(pd.DataFrame(rows))


def _replaying(first: Tensor, propose: Callable[[int], Tensor]) -> Callable[[int], Tensor]:
    """``propose``, except that the first call returns (a head of) the draws ``first`` made already."""
    pending = [first]

    def replay(m: int) -> Tensor:
        return pending.pop()[:m] if pending and m <= len(first) else propose(m)

    return replay


def _record_change(rows: list[dict], previous: Tensor | None, current: Tensor, seed: int) -> bool:
    """Write into the last round's row how far its training moved the posterior at x0."""
    if previous is None or not rows or previous is current:
        return False
    rows[-1]["posterior_change"] = posterior_change(previous.numpy(), current.numpy(), seed=seed)
    return True


def _measured(rows: list[dict]) -> list[float]:
    return [row["posterior_change"] for row in rows if not math.isnan(row["posterior_change"])]


def _threshold(stop_when_converged: bool | float, n: int) -> float:
    """The change below which a round counts as settled, for n draws (the null falls like 1/√n)."""
    base = DEFAULT_THRESHOLD if stop_when_converged is True else float(stop_when_converged)
    return base * math.sqrt(DEFAULT_DRAWS / n)


def _x0_typicality(x: Tensor, x0: Tensor, seed: int) -> float:
    """p-value of "x0 is one more prior-predictive simulation" (round 1's x); warns when it is not."""
    m = min(500, len(x) // 2)
    if m < 99:  # α = 0.01 needs at least 99 calibration points
        return math.nan
    result = check_observation(x, x0, num_calibration=m, seed=seed)
    if result.warning:
        warnings.warn(result.warning, UserWarning, stacklevel=4)
    return result.p_value


def _build(method: Method, prior: Prior, x0: Tensor, cfg: RoundConfig, seed: int) -> nn.Module:
    """The network, built before any simulation so that a bad hyperparameter costs nothing."""
    name = cfg.estimator or method.default_estimator or "classifier"
    try:
        return method.build(prior, len(x0), cfg.estimator, seed, cfg.estimator_kwargs, device=cfg.device)
    except TypeError as e:
        raise ValueError(f"estimator_kwargs={cfg.estimator_kwargs!r} do not fit the {name!r} estimator: {e}") from None


def _check_output_size(simulator, prior: Prior, x0: Tensor, cfg: RoundConfig, seed: int) -> None:
    """One simulation at one prior draw, where the run's simulations will run (so an unpicklable
    simulator or an unreachable cluster is reported now): x0 must have the simulator's output size.
    A failed probe run proves nothing and is let pass (round 1 checks again)."""
    theta = prior.sample((1,), generator=torch.Generator(device="cpu").manual_seed(seed))
    try:
        sims = simulate(simulator, theta, seed=seed, progress=False, **cfg.simulate_options())
    except RuntimeError:  # the run raised: a failure, not a shape
        return
    if sims.x.shape[1] != x0.shape[0]:
        raise ValueError(f"x0 has {x0.shape[0]} entries but the simulator returns {sims.x.shape[1]} "
                         f"(at θ = {theta[0].tolist()})")


def _posterior(method: Method, net, prior: Prior, x0: Tensor, cfg: RoundConfig, sampler: SliceSampler | None,
               gen: torch.Generator, seed: int) -> tuple[Posterior, SliceSampler | None]:
    """The posterior of the network as trained now; MCMC chains persist across rounds."""
    spec = method.spec(prior, len(x0), cfg.estimator, cfg.estimator_kwargs)
    if method.direct:
        return DirectPosterior(net, prior, x0, sample_with=cfg.sample_with, chains=cfg.chains, spec=spec), sampler
    potential = method.potential(net, prior, x0)
    if sampler is None:
        sampler = SliceSampler(potential, _initial_points(prior, potential, cfg.chains, gen), seed=seed,
                               burn_in=PAPER_BURN_IN)
    else:
        sampler.set_potential(potential)
        if sampler.tuned:  # the chains go on from the last target's draws, nearer this one than prior draws are
            sampler.burn_in = cfg.burn_in
    sampler.budget_seconds = cfg.propose_budget
    return MCMCPosterior(potential, prior, x0, sampler, thin=cfg.thin, spec=spec), sampler


def _warn_unhealthy(health: ChainHealth, r: int) -> None:
    """Warn when the chains proposing round r + 1 disagree (nested R-hat above the threshold)."""
    if health.rhat > THRESHOLD:
        warnings.warn(f"the MCMC chains proposing round {r + 1} disagree: nested R-hat {health.rhat:.3f} > {THRESHOLD} "
                      f"(bulk ESS {health.ess:.0f}), so its proposals may misweight or miss parts of the posterior. "
                      "The chains may sit in modes they cannot leave, or need a longer burn-in: use more chains "
                      "(infer(chains=...)) and check the chains with posterior.to_arviz(); every round's values are "
                      "in posterior.history['mcmc_rhat'].", UserWarning, stacklevel=4)


def _warn_exceptions(sims: RoundSimulations, r: int) -> bool:
    """Warn (once per run) that the simulator raised; the history's ``failure_reasons`` has the rest."""
    raised = {k: v for k, v in sims.errors.items() if k != "non-finite output"}
    if raised:
        warnings.warn(f"the simulator raised in round {r + 1}: {sims.reasons()}; those θ were redrawn. "
                      "Every round's reasons are in posterior.history['failure_reasons'].", stacklevel=4)
    return bool(raised)


def _initial_points(prior: Prior, potential, chains: int, gen: torch.Generator) -> Tensor:
    """Chains start at prior draws of finite potential."""
    cand = prior.sample((chains * 20,), generator=gen)
    with torch.no_grad():
        ok = torch.isfinite(potential(cand))
    if ok.sum() < chains:
        raise RuntimeError("could not find starting points with finite posterior potential")
    return cand[ok][:chains]
