"""End-to-end inference on a Gaussian-linear task with an analytic posterior."""

import numpy as np
import pytest
import torch

from sbi_lite import BoxUniform, TrainConfig, infer
from sbi_lite.diagnostics import c2st
from simulators import get_task

NOISE = 0.5


def linear_gaussian(theta, rng):
    return theta + NOISE * rng.standard_normal(theta.shape)


def analytic_posterior(x0, n, seed=0):
    """Prior U(−3, 3)² is flat around x0, so the posterior is N(x0, 0.5² I) truncated (negligibly)."""
    g = torch.Generator().manual_seed(seed)
    return torch.as_tensor(x0) + NOISE * torch.randn(n, 2, generator=g)


def test_input_validation_names_the_problem():
    prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
    with pytest.raises(ValueError, match="non-finite"):
        infer(linear_gaussian, prior, [np.nan, 0.0], progress=False)
    with pytest.raises(ValueError, match="method must be one of .* got .abc."):
        infer(linear_gaussian, prior, [0.0, 0.0], method="abc", progress=False)
    with pytest.raises(ValueError, match="estimator must be one of .* got 'realnvp'"):
        infer(linear_gaussian, prior, [0.0, 0.0], estimator="realnvp", progress=False)
    with pytest.raises(ValueError, match="ODE solve"):
        infer(linear_gaussian, prior, [0.0, 0.0], method="snl", estimator="diffusion", progress=False)
    with pytest.raises(ValueError, match="importance-sampling estimate"):
        infer(linear_gaussian, prior, [0.0, 0.0], method="snl", estimator="aem", progress=False)
    with pytest.raises(TypeError, match="callable"):
        infer(None, prior, [0.0, 0.0])
    with pytest.raises(ValueError, match="x0 has 3 entries"):
        infer(linear_gaussian, prior, [0.0, 0.0, 0.0], rounds=1, simulations_per_round=50, progress=False)


def test_failed_simulations_are_redrawn_and_stay_paired():
    prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))

    def flaky(theta, rng):  # fails on the left half of the prior
        x = theta + 0.1 * rng.standard_normal(theta.shape)
        x[theta[:, 0] < 0] = np.nan
        return x

    from sbi_lite.inference.collect import simulate_round
    from sbi_lite.inference.rounds import RoundConfig
    g = torch.Generator().manual_seed(0)
    sims = simulate_round(flaky, lambda m: prior.sample((m,), generator=g), 400, 0, RoundConfig(progress=False))
    theta, x = sims.theta, sims.x
    assert len(theta) == 400 and (theta[:, 0] >= 0).all() and sims.failed > 100
    assert (x - theta).abs().max() < 0.6  # every x sits next to its own θ (0.1 noise: 6 sd)
    never = lambda t, rng: np.full(t.shape, np.nan)  # noqa: E731
    with pytest.raises(RuntimeError, match="failure fraction 100.0%.*non-finite output"):
        simulate_round(never, lambda m: prior.sample((m,), generator=g), 10, 0, RoundConfig(progress=False, max_attempts=2))


# C2ST of 2,000 draws against 2,000 exact draws in 2-D (measured, seed 0): the exact posterior
# 0.50–0.51; sd × 1.25: 0.575; sd × 0.8: 0.573; a shift of 0.2 sd: 0.545. A bar of 0.56 lets a
# trained posterior's seed-to-seed spread through (SNPE-C 2 rounds, K = 10: 0.49–0.556 over seeds
# 0–1) and stops a posterior whose sd is off by 20–25%.
C2ST_BAR = 0.56


@pytest.mark.slow
@pytest.mark.parametrize("method, rounds", [("snpe", 3), ("sre", 2), ("snl", 2)])
def test_gaussian_linear_c2st(method, rounds):
    prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
    x0 = np.array([0.6, -0.4])
    post = infer(linear_gaussian, prior, x0, method=method, rounds=rounds, simulations_per_round=1000, num_atoms=10,
                 seed=0, progress=False)
    samples = post.sample(2000, seed=1)
    score = c2st(samples, analytic_posterior(x0, 2000), seed=0)
    # measured at bc14c31: snpe 0.503 (3 rounds), sre 0.536 (0.497 with critic="separable");
    # earlier: snl 0.502, snpe 0.523 with preset="paper"
    print(f"{method}: C2ST {score:.3f}")
    assert score <= C2ST_BAR
    assert len(post.history) == rounds and (post.history["simulations"] == 1000).all()


@pytest.mark.slow
def test_nonlinear_gaussian_theta_true_gains_density():
    task = get_task("nonlinear_gaussian")
    post = infer(task.simulator, task.prior, task.x0, method="snpe", rounds=2, simulations_per_round=1000,
                 num_atoms=10, seed=0, progress=False)
    theta_true = torch.as_tensor(task.theta_true, dtype=torch.float32)[None]
    gain = post.log_prob(theta_true).item() - task.prior.log_prob(theta_true).item()
    print(f"log q(θ*|x0) − log p(θ*) = {gain:.2f} nats")
    # a posterior as wide as the prior gains ~0 nats. Measured at seeds 0-5 since 3b2eea7: 4.97, 4.26,
    # 2.45, 4.39, 2.95, 2.71; with the code before it: 6.40, 4.61, 2.81, 3.28, 1.07, 4.03 (this test
    # asked for 5.0, which only seed 0 had reached). Seed 0 is run. With the optimiser's steps skipped
    # (an untrained network, standardised to the prior) it measured 1.33 and failed.
    assert gain > 2.0


@pytest.mark.slow
@pytest.mark.parametrize("task_name", ["nonlinear_gaussian", "lotka_volterra", "mg1"])
@pytest.mark.parametrize("method", ["snpe", "sre", "snl"])
def test_every_method_runs_on_every_task(task_name, method):
    from sbi_lite import TrainConfig

    task = get_task(task_name)
    post = infer(task.simulator, task.prior, task.x0, method=method, rounds=2, simulations_per_round=200,
                 num_atoms=10, seed=0, progress=False, chains=20, train_config=TrainConfig(max_epochs=10))
    h = post.history
    assert list(h["simulations"]) == [200, 200] and list(h["proposal"])[0] == "prior"
    if task_name == "lotka_volterra":
        assert h["failed"].iloc[0] > 0  # ~12% of LV prior draws fail: redrawn, counted
    draws = post.sample(100, seed=0)
    assert draws.shape == (100, task.dim_theta) and task.prior.support_contains(draws).all()


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["aem", "diffusion"])
def test_gaussian_linear_c2st_with_estimated_log_densities(estimator):
    """AEM and diffusion have no cheap exact log q, so SNPE-C's round 2 proposes from the prior
    truncated to round 1's posterior and trains by maximum likelihood on both rounds. A proposal
    that biased the posterior would show in C2ST against the analytic posterior."""
    prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
    x0 = np.array([0.6, -0.4])
    post = infer(linear_gaussian, prior, x0, method="snpe", estimator=estimator, rounds=2, simulations_per_round=1000,
                 seed=0, progress=False)
    assert list(post.history["proposal"]) == ["prior", "truncated prior"]
    samples = post.sample(2000, seed=1)
    score = c2st(samples, analytic_posterior(x0, 2000), seed=0)
    print(f"snpe + {estimator}: C2ST {score:.3f}")  # measured: aem 0.560 (at the bar), diffusion 0.510
    assert score <= C2ST_BAR
    assert prior.support_contains(samples).all()


def test_truncated_prior_keeps_the_prior_shape_inside_the_box():
    from sbi_lite.inference.truncation import truncated_prior

    prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
    g = torch.Generator().manual_seed(0)
    posterior_draws = 0.5 * torch.randn(5000, 2, generator=g) + torch.tensor([1.0, -1.0])
    theta = truncated_prior(prior, posterior_draws, g)(4000)
    low, high = posterior_draws.quantile(1e-3, 0), posterior_draws.quantile(1 - 1e-3, 0)
    assert (theta.min(0).values >= low - 0.1 * (high - low) - 1e-6).all()
    assert (theta.max(0).values <= 3).all()
    # uniform inside the truncation box (prior restricted, not reshaped)
    assert abs(float(theta[:, 0].std()) - float((theta[:, 0].max() - theta[:, 0].min()) / 12**0.5)) < 0.05


def test_truncated_prior_cuts_to_the_highest_density_region_of_each_mode():
    from sbi_lite.inference.truncation import truncated_prior

    prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])

    def log_q(theta):  # two narrow modes, 4 sd apart from the gap between them
        return torch.logsumexp(-0.5 * ((theta[:, None] - centres) / 0.25).pow(2).sum(-1), 1)

    draws = centres[torch.randint(2, (10_000,), generator=g)] + 0.25 * torch.randn(10_000, 2, generator=g)
    theta = truncated_prior(prior, draws, g, log_q=log_q)(4000)
    # the box spans both modes and the gap; the highest-density cut keeps only the two discs
    assert float((theta[:, 0].abs() < 1).float().mean()) == 0.0
    radius = (theta[:, None] - centres).norm(dim=-1).min(1).values
    # by default the cut keeps q's 99% region: r ≤ 3.03 sd for a 2-D Gaussian (99.9%: 3.72 sd);
    # the level is the 1% quantile of 10,000 draws' log q, so the edge is known to about ±0.03 sd
    assert 0.25 * 2.95 < float(radius.max()) < 0.25 * 3.12
    assert 0.45 < float((theta[:, 0] > 0).float().mean()) < 0.55
    boxed = truncated_prior(prior, draws, g)(4000)
    assert float((boxed[:, 0].abs() < 1).float().mean()) > 0.3  # the box alone keeps the gap


@pytest.mark.slow
def test_gaussian_linear_stops_once_converged_without_losing_accuracy():
    """On Gaussian-linear the posterior settles within 2–3 rounds (the paper's SNPE-C, whose
    proposals are the posterior draws compared): the run stops long before its
    8 rounds (measured: after round 3, changes 0.29 and 0.15 against a bar of 0.30 at 500
    draws) and is as accurate as the full runs above (measured C2ST 0.495)."""
    prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
    x0 = np.array([0.6, -0.4])
    post = infer(linear_gaussian, prior, x0, method="snpe", rounds=8, simulations_per_round=500, num_atoms=10,
                 seed=0, progress=False, stop_when_converged=True, preset="paper")
    changes = post.history["posterior_change"]
    assert len(post.history) <= 4 and changes.iloc[-2:].lt(0.15 * (2000 / 500) ** 0.5).all()
    assert np.isnan(changes.iloc[0])  # round 1 is measured against nothing
    assert c2st(post.sample(2000, seed=1), analytic_posterior(x0, 2000), seed=0) <= C2ST_BAR


@pytest.mark.slow
def test_nonlinear_gaussian_does_not_stop_while_the_posterior_moves():
    """The NG posterior (four sign-symmetric modes) keeps moving at 500 simulations a round:
    measured changes 0.65, 0.90, 0.42 posterior sd for rounds 2–4 (and 0.34, 0.35 for rounds 5–6),
    all above the bar of 0.30 at 500 draws, so the run must not stop early."""
    task = get_task("nonlinear_gaussian")
    post = infer(task.simulator, task.prior, task.x0, method="snpe", rounds=4, simulations_per_round=500,
                 num_atoms=10, seed=0, progress=False, stop_when_converged=True, preset="paper")
    changes = post.history["posterior_change"].iloc[1:]
    assert len(post.history) == 4 and changes.notna().all()
    assert (changes > 0.15 * (2000 / 500) ** 0.5).sum() >= 2  # never two settled rounds in a row


@pytest.mark.slow
@pytest.mark.longest
def test_default_snpe_matches_the_exact_nonlinear_gaussian_posterior():
    """The default SNPE-C at the benchmark's budget on the paper's x0, against 10,000
    exact-likelihood draws (benchmarks/reference/ng_observations.npz, observation 0).

    One observation only: a run at this budget took 510-530 s of a 2-core CI machine at 3b9026c (330 s
    at b11ac1e, beside another pytest worker), and the other observations are the benchmark's
    (benchmarks/ng_accuracy.py: ``ours_snpe_default27``, 4 seeds each). Observation 5 was also run here until 3b9026c, at a bar of 0.87; the
    benchmark's runs of the default there measured 0.760 / 0.816 / 0.855 / 0.844 at 3b2eea7 and, since row 27,
    0.809 / 0.747 / 0.857 / 0.857 (seeds 0-3)."""
    from pathlib import Path

    data = np.load(Path(__file__).parents[1] / "benchmarks" / "reference" / "ng_observations.npz")
    task = get_task("nonlinear_gaussian")
    post = infer(task.simulator, task.prior, data["x0"][0], rounds=10, simulations_per_round=1000,
                 seed=0, progress=False)
    score = c2st(post.sample(10_000, seed=1000), torch.as_tensor(data["reference"][0]), seed=0)
    print(f"C2ST {score:.3f}")
    # this run (seed 0) measured 0.772 at 3b9026c (minibatches of 200 at 1e-3), as the benchmark's cell does;
    # at the default since snpe_causes.md row 27 (400 at 2e-3) that cell measures 0.753. The benchmark's runs
    # of this default on this observation, seeds 0-3: 0.753 / 0.724 / 0.762 / 0.803 (median 0.758; the old
    # default's 0.780 / 0.742 / 0.736 / 0.782, median 0.761), so the bar is not tightened: 0.79 holds at three
    # of the four seeds (sbi NPE-C 0.77-0.83 there; the paper's atomic MAF 0.85-0.93)
    assert score <= 0.79


@pytest.mark.parametrize("retrain", [False, True])
def test_retraining_from_scratch_starts_later_rounds_from_fresh_weights_and_round_one_scaling(monkeypatch, retrain):
    from sbi_lite.inference import rounds

    seen = []  # per round: the network handed to training, its weights and buffers then, and after

    def recording_train(net, *args, **kwargs):
        before = {k: v.clone() for k, v in net.state_dict().items()}
        history = train(net, *args, **kwargs)
        seen.append((net, before, {k: v.clone() for k, v in net.state_dict().items()}))
        return history

    train = rounds.train
    monkeypatch.setattr(rounds, "train", recording_train)
    prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
    infer(linear_gaussian, prior, [0.5, -0.5], rounds=3, simulations_per_round=200, seed=0, progress=False,
          train_config=TrainConfig(max_epochs=3), retrain_from_scratch=retrain)
    assert len(seen) == 3
    scaling = ["input_map.mean", "input_map.std", "context_map.mean", "context_map.std"]
    assert not torch.equal(seen[0][1]["context_map.std"], torch.ones(2))  # fitted to round 1's x
    for (_, _, trained), (net, start, _) in zip(seen, seen[1:]):
        weights = [k for k, _ in net.named_parameters()]
        warm = all(torch.equal(start[k], trained[k]) for k in weights)
        assert warm != retrain  # fresh weights exactly when retraining ...
        assert all(torch.equal(start[k], seen[0][1][k]) for k in scaling)  # ... and round 1's scaling always
    # checkpoints written before the option existed (without it in their fingerprint) still resume
    assert ("retrain_from_scratch" in rounds.RoundConfig(retrain_from_scratch=retrain).fingerprint()) == retrain


def test_truncation_tail_reaches_the_proposal_and_the_checkpoint_fingerprint(monkeypatch):
    from sbi_lite.inference import rounds

    class Built(Exception):
        """Raised once round 2's proposal is built: nothing after it is under test."""

    seen = []  # round 2's truncated proposal: the tail it was given, and whether log q came with it

    def recording_truncated_prior(*args, **kwargs):
        seen.append((kwargs["tail"], kwargs["log_q"] is not None))
        raise Built

    monkeypatch.setattr(rounds, "truncated_prior", recording_truncated_prior)
    prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
    for tail in (None, 0.05):
        with pytest.raises(Built):
            infer(linear_gaussian, prior, [0.5, -0.5], rounds=2, simulations_per_round=200, seed=0, progress=False,
                  train_config=TrainConfig(max_epochs=3), truncation_tail=tail)
    # None: the default with the highest-density cut, so log q must come too
    assert seen == [(0.01, True), (0.05, True)]
    # the configuration's own fingerprint holds a tail only where one is set; the round loop adds the
    # tail in effect to truncated runs' (test_checkpoint.py)
    assert "truncation_tail" not in rounds.RoundConfig().fingerprint()
    assert rounds.RoundConfig(truncation_tail=0.05).fingerprint()["truncation_tail"] == "0.05"


def test_the_first_target_burns_in_200_sweeps_and_every_later_one_burn_in(monkeypatch):
    """The chains start at prior draws for round 1's posterior, then go on from each round's draws."""
    from sbi_lite.samplers import SliceSampler

    burned, run = [], SliceSampler.run

    def spy(self, sweeps):
        if self.needs_burn_in:
            burned.append(sweeps)
        run(self, sweeps)

    monkeypatch.setattr(SliceSampler, "run", spy)
    post = infer(lambda t, rng: t + 0.5 * rng.standard_normal(t.shape), BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2)),
                 [0.5, -0.5], method="snl", rounds=3, simulations_per_round=100, seed=0, progress=False, chains=4,
                 burn_in=7, train_config=TrainConfig(max_epochs=3))
    post.sample(10, seed=0)
    assert burned[0] == 200 and len(burned) >= 3 and set(burned[1:]) == {7}, burned


def test_thin_sets_the_sweeps_between_every_kept_draw_the_proposals_and_the_posterior(monkeypatch):
    from sbi_lite.samplers import SliceSampler

    thins, sample = [], SliceSampler.sample
    monkeypatch.setattr(SliceSampler, "sample", lambda self, n, thin=10, **kw: thins.append(thin) or sample(self, n, thin, **kw))
    post = infer(lambda t, rng: t + 0.5 * rng.standard_normal(t.shape), BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2)),
                 [0.5, -0.5], method="sre", rounds=2, simulations_per_round=100, seed=0, progress=False, chains=4,
                 thin=3, train_config=TrainConfig(max_epochs=3))
    post.sample(10, seed=0)
    assert len(thins) >= 2 and set(thins) == {3}, thins  # round 2's proposals and the final draws at least
