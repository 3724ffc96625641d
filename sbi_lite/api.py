"""``infer(simulator, prior, x0)``: the one call a scientist needs."""

from __future__ import annotations

import inspect
import os
from typing import Callable

import numpy as np
import torch

from sbi_lite.checks import check_bool, check_choice, check_int, check_positive
from sbi_lite.density import REGISTRY
from sbi_lite.devices import check_device
from sbi_lite.inference import METHODS, RoundConfig, run_rounds
from sbi_lite.inference.presets import PRESETS, preset_training, resolve_preset
from sbi_lite.posterior import Posterior
from sbi_lite.priors import as_prior
from sbi_lite.seeding import Seed, check_seed
from sbi_lite.simulate_backends import choose_backend, resolve_n_jobs
from sbi_lite.simulate_dask import check_cluster
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
    num_atoms: int | None = None,
    proposal: str | None = None,
    preset: str = "default",
    seed: Seed = None,
    n_jobs: int = 1,
    progress: bool | None = None,
    leakage_free: bool | None = None,
    estimator_kwargs: dict | None = None,
    train_config: TrainConfig | None = None,
    chains: int = 100,
    burn_in: int | None = None,
    thin: int | None = None,
    sample_with: str = "auto",
    vectorized: bool = True,
    backend: str | None = None,
    cluster=None,
    simulation_timeout: float | None = None,
    initial: tuple | None = None,
    checkpoint: str | os.PathLike | None = None,
    max_failure_fraction: float = 0.8,
    propose_budget: float | None = 600.0,
    stop_when_converged: bool | float = False,
    device: str | torch.device = "cpu",
    retrain_from_scratch: bool = False,
    truncation_tail: float | None = None,
) -> Posterior:
    """Sequential simulation-based inference of p(θ | x0).

    Args:
        simulator: θ (n, d) -> x (n, d_x), numpy or torch; may take ``rng=`` (numpy Generator).
            Failed runs (NaN rows or exceptions) are dropped and redrawn.
        prior: an sbi_lite prior or any torch Distribution.
        x0: the observation (d_x,).
        method: "snpe" (SNPE-C / atomic APT), "sre" (contrastive ratio estimation) or "snl".
        estimator: density estimator for "snpe"/"snl" (None: the preset's, "nsf" for SNPE-C and
            "maf" for SNL by default, "maf" for both with ``preset="paper"``; "nsf_ar", "aem",
            "diffusion", "ensemble" or any registered name).
        rounds, simulations_per_round: the simulation budget.
        num_atoms: K of the contrastive loss (2 ≤ K ≤ the minibatch size; None: the preset's, 100, or
            50 for SRE under the default preset).
        proposal: where SNPE-C's later rounds draw θ: "posterior" (q(θ|x0) itself, trained by
            the atomic contrastive loss, as in the paper) or "truncated" (the prior restricted to
            q's highest-density region at x0, trained by maximum likelihood: truncated sequential
            NPE). None: the preset's; estimators without a cheap exact log-density (AEM,
            diffusion) always use "truncated".
        preset: where the arguments left as None take their values: "default" (chosen by C2ST
            against exact references on Nonlinear-Gaussian observations, benchmarks/results/
            ng_accuracy.md and snpe_causes.md: SNPE-C with an NSF, truncated proposals and, for
            that NSF, minibatches of 400 at learning rate 2e-3; other estimators train with the
            paper's settings, except SRE's classifier, at K = 50 and learning rate 2e-3 with gradients
            clipped at norm 5, benchmarks/results/sre_training.md) or "paper" (the paper's settings:
            SNPE-C with a MAF, K = 100, proposals from q(θ|x0), minibatches of 100 at 5e-4; SRE at
            K = 100). SNL is the same in both.
        seed: same seed, same posterior, whatever ``n_jobs``.
        n_jobs: simulation workers.
        progress: progress bars over rounds, and inside each round over simulations and training
            epochs; None (default): shown when stderr is a terminal.
        leakage_free: SNPE-C with a box prior: an NSF whose support IS the prior's box, so no
            posterior mass leaks outside it and rejection never rejects (None: the preset's).
        estimator_kwargs: hyperparameters for the estimator builder; for SRE, the classifier's:
            ``hidden``, ``num_blocks`` and ``critic`` ("joint", the paper's net on [θ, x], or
            "separable", f = a(θ)ᵀb(x) with ``features``-wide embeddings: a fifth of the CPU, and
            more accurate where log p(x|θ) is close to such an inner product, as for Gaussian
            noise, less where it is not; ``sbi_lite.ratio.RatioEstimator``).
        train_config: training settings (default: the paper's, with the preset's minibatch size
            and learning rate, the method's gradient clipping and the estimator's declared weight
            averaging, ``capabilities.ema``; an ensemble trains as its members would).
        chains: slice-sampling chains for SRE and SNL (and SNPE-C when it samples by MCMC).
        burn_in: SRE and SNL: slice-sampling sweeps discarded when a round's newly trained
            target replaces the last one; the chains go on from where the last target's draws
            left them. The first target, whose chains start at prior draws, always burns in 200.
            None: the preset's (for SNL 50 in "default", measured by C2ST on the NG and two
            moons; 200, the paper's, otherwise).
        thin: SRE and SNL: slice-sampling sweeps between kept draws, for each round's proposals
            and the returned posterior's draws. None: the preset's (for SNL 5 in "default", as
            accurate as 10 on the NG and two moons in 0.87-0.94x the CPU, with about half the
            final draws' ESS; 10, the paper's, otherwise).
        sample_with: how SNPE-C draws from q(θ|x0) inside the prior's support: "rejection",
            "mcmc" (the paper's SNPE-C + MCMC control) or "auto" (rejection, switching to MCMC
            when acceptance falls below 1%).
        vectorized: whether ``simulator`` takes a batch θ (n, d); with False it maps one θ (d,)
            to one x (d_x,) and is called row by row.

        backend, cluster: where simulations run, as in ``sbi_lite.simulate``: None (this process for
            ``n_jobs=1``, else worker processes), "processes", or "dask" on the cluster at
            ``cluster`` (an address or a ``distributed.Client``; None starts a ``LocalCluster``
            of ``n_jobs`` workers for the run). Results are the same on every backend.
        simulation_timeout: seconds one chunk of simulations may take; a chunk over it fails
            (its θ are redrawn) and the run goes on.
        initial: (θ (n, d), x (n, d_x)) pairs already simulated, with θ drawn from the prior (an
            earlier run's round 1, a cluster job): they stand for round 1's simulations, and round
            1 only simulates what is missing up to ``simulations_per_round``.
        checkpoint: a file path. The run is written there (atomically) after every round; calling
            ``infer`` again with the same arguments resumes from it and re-simulates nothing
            already stored. A changed configuration is refused, naming what changed; the training
            counts as the ``TrainConfig`` it resolves to, and a refusal for it names the
            ``train_config`` that resumes the run.
        max_failure_fraction: stop, naming the reasons, when more than this fraction of a round's
            simulations fail.
        propose_budget: seconds a round's proposing phase (MCMC above all) may take before it
            warns while running and is flagged in the history (None: never).

        stop_when_converged: end the run once two successive rounds moved the posterior at x0 by
            less than the null level of ``sbi_lite.diagnostics.posterior_change`` (True), or by less
            than this many posterior sd (a float, for 2,000 draws; scaled by √(2000/n) for n).
            Every round's change is in the history (``posterior_change``) either way; a run that
            stops does so before simulating the next round.
        device: where the network is built, trained and evaluated ("cpu", "cuda", "cuda:1", "mps").
            Simulations, the prior, proposals, slice-sampling chains and the returned posterior's
            draws stay on the CPU; the network is built on the CPU and moved, so its initial
            weights are the same on every device (results are not bitwise equal across devices,
            as floating-point kernels differ). A checkpoint records it: resume on the same device.
        retrain_from_scratch: rounds 2 onwards train a freshly initialised network (round 1's
            pre-processing, new weights) on all rounds' pairs, instead of going on from the last
            round's weights; a warm-started network that under-fits stays where it is.
        truncation_tail: with ``proposal="truncated"``, how much of q(θ|x0) the proposal may cut:
            the prior restricted to q's highest-density region holding 1 − tail of its mass and
            to the box of q's [tail, 1 − tail] quantiles, widened by a tenth of its width on each
            side (the box cuts a little more: for a 5-D Gaussian q at 1e-2, 97% of q's mass is
            kept). None: 1e-2 where q's log-density is exact (chosen by C2ST on the Nonlinear
            Gaussian, benchmarks/results/snpe_causes.md row 17), 1e-3 for the box alone (AEM,
            diffusion). A smaller tail keeps more of the posterior's tails in the proposal; a
            larger one spends the simulations closer to x0.

    Before round 1 every argument is checked, the estimator is built, and the simulator is
    called on one prior draw to check x0's length: a mistake costs seconds, not a round.

    Returns:
        The last round's posterior, with ``.history`` (one row per round).

    Example:
        >>> from sbi_lite import BoxUniform
        >>> prior = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))
        >>> post = infer(lambda t, rng: t + 0.1 * rng.standard_normal(t.shape), prior, [0.5, -0.5],
        ...              estimator="maf", rounds=1, simulations_per_round=1000, seed=0, progress=False,
        ...              train_config=TrainConfig(max_epochs=20, learning_rate=3e-3))
        >>> draws = post.sample(1000, seed=0)  # the exact posterior is N(x0, 0.1² I) (prior draws: sd 1.15)
        >>> draws.shape, bool((draws.mean(0) - torch.tensor([0.5, -0.5])).abs().max() < 0.1)
        (torch.Size([1000, 2]), True)
        >>> bool(0.05 < draws.std(0).min() and draws.std(0).max() < 0.15)
        True
    """
    if not callable(simulator):
        raise TypeError(f"simulator must be callable, got {type(simulator).__name__}")
    check_choice("method", method, METHODS)
    check_choice("preset", preset, PRESETS)
    if leakage_free is not None:
        check_bool("leakage_free", leakage_free)
    explicit_proposal = proposal
    for name, value, least in (("burn_in", burn_in, 0), ("thin", thin, 1)):
        if value is not None:
            check_int(name, value, minimum=least)
            if method == "snpe":
                raise ValueError(f"{name} applies to method='sre' and 'snl', whose slice-sampling chains go on from "
                                 f"round to round; SNPE-C draws from q(θ|x0) afresh. Got {name}={value}")
    resolved = resolve_preset(preset, method, estimator=None if method == "sre" else estimator, num_atoms=num_atoms,
                              proposal=proposal, leakage_free=leakage_free, burn_in=burn_in, thin=thin)
    if method != "sre":
        estimator = resolved["estimator"]
    num_atoms, proposal, leakage_free = resolved["num_atoms"], resolved["proposal"], bool(resolved["leakage_free"])
    num_atoms = RoundConfig.num_atoms if num_atoms is None else num_atoms  # SNL has no K
    # SNPE-C has no chains that go on from round to round
    burn_in = RoundConfig.burn_in if resolved["burn_in"] is None else resolved["burn_in"]
    thin = RoundConfig.thin if resolved["thin"] is None else resolved["thin"]
    if method == "sre" and estimator is not None:
        raise ValueError("method='sre' trains a classifier; 'estimator' does not apply")
    if estimator is not None:
        check_choice("estimator", estimator, sorted(REGISTRY))
    if estimator_kwargs is not None and not isinstance(estimator_kwargs, dict):
        raise TypeError(f"estimator_kwargs must be a dict or None, got {type(estimator_kwargs).__name__}")
    train_defaults = preset_training(preset, method, estimator, estimator_kwargs)
    prior = as_prior(prior)
    x0 = _as_observation(x0)
    flags = (("progress", progress), ("vectorized", vectorized), ("retrain_from_scratch", retrain_from_scratch))
    for name, value in flags:
        if not (name == "progress" and value is None):
            check_bool(name, value)
    check_int("rounds", rounds, minimum=1)
    check_int("simulations_per_round", simulations_per_round, minimum=10)
    check_int("chains", chains, minimum=1)
    choose_backend(backend, resolve_n_jobs(n_jobs), cluster, simulation_timeout)
    if backend == "dask":
        check_cluster(cluster)
    check_choice("sample_with", sample_with, ("auto", "rejection", "mcmc"))
    if method != "snpe" and sample_with != "auto":
        raise ValueError(f"sample_with={sample_with!r} applies to method='snpe' only; {method!r} always samples "
                         "by slice sampling")
    if train_config is not None and not isinstance(train_config, TrainConfig):
        raise TypeError(f"train_config must be a TrainConfig or None, got {type(train_config).__name__}")
    if method != "snl":
        batch = (train_config or TrainConfig(**train_defaults)).batch_size
        if not 2 <= check_int("num_atoms", num_atoms) <= batch:
            raise ValueError(f"num_atoms must be in [2, batch size {batch}] (each minibatch item is contrasted "
                             f"with num_atoms - 1 others of its batch), got {num_atoms}")
    check_seed(seed)
    device = check_device("device", device)
    check_positive("propose_budget", propose_budget, allow_none=True)
    if stop_when_converged is not False and stop_when_converged is not True:
        check_positive("stop_when_converged", stop_when_converged)
    if check_positive("max_failure_fraction", max_failure_fraction) > 1:
        raise ValueError(f"max_failure_fraction must be in (0, 1], got {max_failure_fraction}")
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a file path or None, got {checkpoint!r}")
    initial = None if initial is None else _as_pairs(initial, prior, x0)
    kwargs = dict(estimator_kwargs or {})
    if leakage_free:
        if method != "snpe":
            raise ValueError("leakage_free applies to method='snpe' (MCMC methods never leave the support)")
        if prior.bounds is None:
            raise ValueError(f"leakage_free needs a box prior; {prior!r} has no box support")
        estimator = estimator or "nsf"
        if "bounds" not in inspect.signature(REGISTRY[estimator]).parameters:
            raise ValueError(f"leakage_free needs an estimator with a box-supported variant ('nsf' or 'nsf_ar'); "
                             f"estimator={estimator!r} has none")
        kwargs.setdefault("bounds", prior.bounds)
    capabilities = getattr(REGISTRY.get(estimator or ""), "capabilities", None)
    if explicit_proposal is not None:
        check_choice("proposal", explicit_proposal, ("posterior", "truncated"))
        if method != "snpe":
            raise ValueError(f"proposal={explicit_proposal!r} applies to method='snpe' only; {method!r} proposes from "
                             "its posterior")
    exact = capabilities is None or capabilities.log_prob == "exact"
    if explicit_proposal == "posterior" and not exact:
        raise ValueError(f"proposal='posterior' trains by the atomic contrastive loss, which needs an exact log-density; "
                         f"estimator {estimator!r} has none: use proposal='truncated' (the default for it)")
    proposal = (proposal or "posterior") if exact else "truncated"
    if method == "snl" and capabilities is not None and capabilities.log_prob == "estimate":
        raise ValueError(f"method='snl' with estimator {estimator!r} is refused: its log-density is an importance-"
                         "sampling estimate that maximum-likelihood training learns to exploit (on a two-parameter "
                         "Gaussian task log q(x0|θ) grew without bound within round 1, benchmarks/results/snl_aem.md),"
                         " so MCMC on q(x0|θ) has no valid target. Use a flow (estimator='maf' or 'nsf') with SNL, "
                         "or method='snpe' with estimator='aem'")
    if method == "snl" and capabilities is not None and capabilities.log_prob == "ode":
        raise ValueError(f"method='snl' evaluates q(x0|θ) at every MCMC step, and estimator {estimator!r} computes "
                         "its log-density by an ODE solve (hundreds of network calls each); use a flow or 'aem', "
                         "or method='snpe'")
    if sample_with == "mcmc" and capabilities is not None and capabilities.log_prob == "ode":
        raise ValueError(f"sample_with='mcmc' slice-samples q(θ|x0), and estimator {estimator!r} computes its "
                         "log-density by an ODE solve (hundreds of network calls each); use 'rejection' or 'auto'")
    truncation_tail = check_positive("truncation_tail", truncation_tail, allow_none=True, below=0.5)
    if truncation_tail is not None:
        if method != "snpe":
            raise ValueError(f"truncation_tail applies to method='snpe' only, got method={method!r}")
        if proposal != "truncated":
            raise ValueError(f"truncation_tail applies to proposal='truncated' only; this run's proposal is "
                             f"{proposal!r} (preset {preset!r})")
    cfg = RoundConfig(rounds=rounds, simulations_per_round=simulations_per_round, num_atoms=num_atoms, proposal=proposal,
                      estimator=estimator, estimator_kwargs=kwargs, train=train_config,
                      train_defaults=train_defaults, n_jobs=n_jobs,
                      chains=chains, burn_in=burn_in, thin=thin, sample_with=sample_with, progress=progress, vectorized=vectorized,
                      max_failure_fraction=max_failure_fraction, propose_budget=propose_budget, backend=backend,
                      cluster=cluster, simulation_timeout=simulation_timeout,
                      stop_when_converged=stop_when_converged, device=str(device),
                      retrain_from_scratch=retrain_from_scratch, truncation_tail=truncation_tail)
    return run_rounds(simulator, prior, x0, METHODS[method], cfg, seed, initial=initial, checkpoint=checkpoint)


def _as_observation(x0) -> torch.Tensor:
    """x0 as a float (d_x,) tensor, detached from any graph."""
    if isinstance(x0, torch.Tensor):
        x0 = x0.detach().cpu().numpy()
    try:
        arr = np.asarray(x0, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"x0 must be an array of numbers, got {x0!r}") from None
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"x0 must be one observation of shape (d_x,); got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"x0 contains non-finite values: {arr.tolist()}")
    return torch.as_tensor(arr, dtype=torch.get_default_dtype(), device="cpu")  # the network's device is train's business


def _as_pairs(initial, prior, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``initial`` as float (θ (n, d), x (n, d_x)) tensors, checked against the prior and x0."""
    if not isinstance(initial, (tuple, list)) or len(initial) != 2:
        raise TypeError(f"initial must be a pair (theta, x), got {type(initial).__name__}")
    theta, x = (torch.as_tensor(np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64),
                                dtype=torch.get_default_dtype(), device="cpu") for v in initial)
    if theta.dim() != 2 or theta.shape[1] != prior.dim:
        raise ValueError(f"initial θ has shape {tuple(theta.shape)}; expected (n, {prior.dim})")
    if x.dim() != 2 or x.shape[1] != len(x0):
        raise ValueError(f"initial x has shape {tuple(x.shape)}; expected (n, {len(x0)}) like x0")
    if len(x) != len(theta):
        raise ValueError(f"initial x has {len(x)} rows but θ has {len(theta)}")
    outside = int((~prior.support_contains(theta)).sum())
    if outside:
        raise ValueError(f"{outside} initial θ lie outside the prior's support")
    bad = int((~torch.isfinite(x).all(1)).sum())
    if bad:
        raise ValueError(f"{bad} initial x rows are not finite (failed runs): drop them first")
    return theta, x
