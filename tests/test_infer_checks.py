"""Every mistake in a call to ``infer`` is caught before the first simulation is spent, with an
error that names the argument and the value; what a run could not do is recorded, not lost."""

import math

import numpy as np
import pytest
import torch

from sbi_lite import BoxUniform, TrainConfig, infer

PRIOR = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
FAST = dict(rounds=1, simulations_per_round=100, progress=False, seed=0, chains=4,
            train_config=TrainConfig(max_epochs=2))


class Counting:
    """A simulator that counts the rows it is asked to simulate."""

    def __init__(self):
        self.rows = 0

    def __call__(self, theta, rng):
        self.rows += len(theta)
        return theta + 0.5 * rng.standard_normal(theta.shape)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(rounds=1.5), TypeError, r"rounds must be an int, got 1\.5"),
    (dict(rounds="2"), TypeError, r"rounds must be an int, got '2'"),
    (dict(rounds=0), ValueError, r"rounds must be >= 1, got 0"),
    (dict(simulations_per_round=5), ValueError, r"simulations_per_round must be >= 10, got 5"),
    (dict(n_jobs=0), ValueError, r"n_jobs must be .* got n_jobs=0"),
    (dict(chains=0), ValueError, r"chains must be >= 1, got 0"),
    (dict(num_atoms=101), ValueError, r"num_atoms must be in \[2, batch size 100\].* got 101"),
    (dict(num_atoms=1), ValueError, r"num_atoms must be in \[2, batch size 100\].* got 1"),
    (dict(method="sre", sample_with="mcmc"), ValueError, r"sample_with='mcmc' applies to method='snpe'"),
    (dict(sample_with="nuts"), ValueError, r"sample_with must be one of .* got 'nuts'"),
    (dict(estimator="maf", leakage_free=True), ValueError, r"MAF's affine layers cannot keep a box support"),
    (dict(estimator="aem", leakage_free=True), ValueError, r"estimator='aem' has none"),
    (dict(estimator_kwargs=dict(hiden=8)), ValueError, r"estimator_kwargs=\{'hiden': 8\} do not fit the 'nsf'.*hiden"),
    (dict(method="sre", estimator_kwargs=dict(width=8)), ValueError, r"do not fit the 'classifier'.*width"),
    (dict(method="sre", estimator_kwargs=dict(critic="bilinear")), ValueError,
     r"critic must be one of \('joint', 'separable'\), got 'bilinear'"),
    (dict(method="sre", estimator_kwargs=dict(features=8)), ValueError,
     r"features=8 applies to critic='separable' only"),
    (dict(method="sre", estimator_kwargs=dict(critic="separable", features=0)), ValueError,
     r"features must be a positive int, got 0"),
    (dict(progress="yes"), TypeError, r"progress must be True or False, got 'yes'"),
    (dict(retrain_from_scratch=1), TypeError, r"retrain_from_scratch must be True or False, got 1"),
    (dict(truncation_tail=0.5), ValueError, r"truncation_tail must be a number in \(0, 0\.5\) or None, got 0\.5"),
    (dict(truncation_tail=0), ValueError, r"truncation_tail must be a number in \(0, 0\.5\) or None, got 0"),
    (dict(truncation_tail=math.nan), ValueError, r"truncation_tail must be a number .* got nan"),
    (dict(truncation_tail=True), ValueError, r"truncation_tail must be a number .* got True"),
    (dict(truncation_tail=0.01, method="sre"), ValueError, r"truncation_tail applies to method='snpe' only, got method='sre'"),
    (dict(truncation_tail=0.01, preset="paper"), ValueError,
     r"truncation_tail applies to proposal='truncated' only; this run's proposal is 'posterior' \(preset 'paper'\)"),
    (dict(truncation_tail=0.01, proposal="posterior"), ValueError, r"this run's proposal is 'posterior'"),
    (dict(method="snl", burn_in=-1), ValueError, r"burn_in must be >= 0, got -1"),
    (dict(method="sre", burn_in=2.5), TypeError, r"burn_in must be an int, got 2\.5"),
    (dict(burn_in=20), ValueError, r"burn_in applies to method='sre' and 'snl'.* Got burn_in=20"),
    (dict(method="snl", thin=0), ValueError, r"thin must be >= 1, got 0"),
    (dict(method="sre", thin="5"), TypeError, r"thin must be an int, got '5'"),
    (dict(thin=5), ValueError, r"thin applies to method='sre' and 'snl'.* Got thin=5"),
    (dict(seed=-1), ValueError, r"seed must be non-negative, got -1"),
    (dict(seed=1.5), TypeError, r"seed must be an int"),
    (dict(train_config=dict(max_epochs=2)), TypeError, r"train_config must be a TrainConfig"),
    (dict(estimator_kwargs=[("hidden", 8)]), TypeError, r"estimator_kwargs must be a dict or None, got list"),
    (dict(estimator="ensemble", estimator_kwargs=dict(member=["nsf"])), ValueError,
     r"estimator_kwargs\['member'\] must be one of .* got \['nsf'\]"),
    (dict(estimator="ensemble", estimator_kwargs=dict(member="ensemble")), ValueError,
     r"estimator_kwargs\['member'\] must be one of .* got 'ensemble'"),
])
def test_bad_arguments_cost_no_simulation(kwargs, error, match):
    sim = Counting()
    with pytest.raises(error, match=match):
        infer(sim, PRIOR, [0.0, 0.0], **{**FAST, **kwargs})
    assert sim.rows == 0


def test_wrong_length_x0_costs_one_probe_simulation():
    sim = Counting()
    with pytest.raises(ValueError, match=r"x0 has 3 entries but the simulator returns 2"):
        infer(sim, PRIOR, [0.0, 0.0, 0.0], **FAST)
    assert sim.rows == 1


def test_x0_that_requires_grad_and_a_one_theta_simulator():
    x0 = torch.tensor([0.5, -0.5], requires_grad=True)
    post = infer(lambda t: t + 0.5 * torch.randn(2), PRIOR, x0, vectorized=False, **FAST)
    assert post.sample(5, seed=0).shape == (5, 2) and not post.x0.requires_grad


def test_simulator_exceptions_are_recorded_in_the_history_and_warned_once():
    def partial(theta, rng):  # raises for part of the prior: re-run row by row, counted, explained
        if (theta[:, 0] > 2).any():
            raise IndexError("index 7 is out of bounds")
        return theta + 0.5 * rng.standard_normal(theta.shape)

    with pytest.warns(UserWarning, match=r"raised in round 1: IndexError x\d+ \(index 7 is out of bounds\)") as record:
        post = infer(partial, PRIOR, [0.0, 0.0], **{**FAST, "rounds": 2, "method": "snpe", "num_atoms": 10})
    assert sum("raised in round" in str(w.message) for w in record) == 1
    reasons = post.history["failure_reasons"]
    n = int(post.history["failed"].iloc[0])
    assert reasons.iloc[0] == f"IndexError x{n} (index 7 is out of bounds)" and n > 5


def test_mostly_failing_simulator_stops_with_its_reasons():
    def mostly_nan(theta, rng):
        x = theta.copy()
        x[theta[:, 0] > -2] = np.nan  # 5/6 of the prior fails
        return x

    with pytest.raises(RuntimeError, match=r"failure fraction 8\d\.\d%.*max_failure_fraction 0.8.*non-finite output"):
        infer(mostly_nan, PRIOR, [0.0, 0.0], **FAST)


def test_expensive_mcmc_proposals_warn_and_are_flagged_in_the_history():
    from sbi_lite.samplers import SliceSampler

    sampler = SliceSampler(lambda t: -0.5 * t.pow(2).sum(-1), torch.zeros(4, 2), seed=0, budget_seconds=1e-9)
    with pytest.warns(RuntimeWarning, match=r"over its budget of 0 s: \d+ of 260 sweeps over 4 chains"):
        sampler.sample(40, thin=1)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # within budget: silent
        SliceSampler(lambda t: -0.5 * t.pow(2).sum(-1), torch.zeros(4, 2), seed=0, budget_seconds=60).sample(40)


def test_initial_pairs_stand_for_round_one():
    g = torch.Generator().manual_seed(1)
    theta = PRIOR.sample((150,), generator=g)
    x = theta + 0.5 * torch.randn(150, 2, generator=g)
    sim = Counting()
    post = infer(sim, PRIOR, [0.0, 0.0], initial=(theta, x), **{**FAST, "rounds": 2, "num_atoms": 10})
    assert sim.rows == 1 + 100  # the probe, and round 2 only
    assert list(post.history["simulations"]) == [0, 100]
    with pytest.raises(ValueError, match=r"initial θ has shape \(150, 3\); expected \(n, 2\)"):
        infer(sim, PRIOR, [0.0, 0.0], initial=(torch.zeros(150, 3), x), **FAST)
    with pytest.raises(ValueError, match=r"initial x has 149 rows but θ has 150"):
        infer(sim, PRIOR, [0.0, 0.0], initial=(theta, x[:149]), **FAST)
    with pytest.raises(ValueError, match=r"2 initial θ lie outside the prior's support"):
        infer(sim, PRIOR, [0.0, 0.0], initial=(torch.cat([theta[:148], 9 * torch.ones(2, 2)]), x), **FAST)
    assert math.isfinite(float(post.history["best_validation_loss"].iloc[0]))


def test_an_atypical_x0_is_warned_about_after_round_one():
    with pytest.warns(UserWarning, match=r"x0 is atypical of the \d+ simulations .* most off in x\[0\]"):
        post = infer(Counting(), PRIOR, [12.0, 0.0], **{**FAST, "simulations_per_round": 300})
    assert post.history["x0_typicality_p"].iloc[0] < 0.01
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        typical = infer(Counting(), PRIOR, [0.5, -0.5], **{**FAST, "simulations_per_round": 300})
    assert typical.history["x0_typicality_p"].iloc[0] > 0.01


@pytest.mark.parametrize("kwargs, batch, lr, clip", [
    (dict(), 400, 2e-3, 5.0),                                # the default preset's SNPE-C training
    (dict(preset="paper"), 100, 5e-4, 5.0),                  # the paper's
    (dict(method="sre", num_atoms=10), 100, 2e-3, 5.0),      # SRE's classifier, as measured (results/sre_training.md)
    (dict(method="sre", num_atoms=10, preset="paper"), 100, 5e-4, None),  # the paper's SRE does not clip
    (dict(estimator="maf"), 100, 5e-4, 5.0),                 # measured for the NSF only
    (dict(estimator="ensemble", estimator_kwargs=dict(members=2, hidden=8, num_transforms=1)), 400, 2e-3, 5.0),
    (dict(estimator="ensemble", estimator_kwargs=dict(members=2, member="maf", hidden=8)), 100, 5e-4, 5.0),
    (dict(train_config=TrainConfig(batch_size=50), num_atoms=10), 50, 5e-4, 5.0),  # an explicit config wins
])
def test_the_preset_sets_batch_size_and_learning_rate_unless_train_config_does(monkeypatch, kwargs, batch, lr, clip):
    from dataclasses import replace

    from sbi_lite.inference import rounds

    seen = []

    def spy(module, loss_fn, data, *, config, **rest):
        seen.append(config)
        return train(module, loss_fn, data, config=replace(config, max_epochs=1), **rest)

    train = rounds.train
    monkeypatch.setattr(rounds, "train", spy)
    post = infer(Counting(), PRIOR, [0.0, 0.0], **{**FAST, "train_config": None, "simulations_per_round": 400, **kwargs})
    assert [(c.batch_size, c.learning_rate, c.clip_grad_norm) for c in seen] == [(batch, lr, clip)]
    assert post.history["training"].tolist() == [seen[0].brief()]  # the history names what trained


@pytest.mark.parametrize("kwargs, atoms", [
    (dict(method="sre"), 50),                    # measured: results/sre_training.md
    (dict(method="sre", preset="paper"), 100),   # the paper's
    (dict(method="sre", num_atoms=7), 7),        # an explicit K wins
    (dict(), 100),                               # SNPE-C
])
def test_the_preset_sets_num_atoms_unless_the_caller_does(monkeypatch, kwargs, atoms):
    import sbi_lite.api

    seen = []
    monkeypatch.setattr(sbi_lite.api, "run_rounds", lambda simulator, prior, x0, method, cfg, *a, **kw: seen.append(cfg))
    infer(Counting(), PRIOR, [0.0, 0.0], **{**FAST, **kwargs})
    assert [c.num_atoms for c in seen] == [atoms]


@pytest.mark.parametrize("kwargs, burn_in, thin", [
    (dict(method="snl"), 50, 5),                      # measured: results/performance_targets.md, target 5
    (dict(method="sre"), 200, 10),                    # 50 was no better on two moons there
    (dict(method="snl", preset="paper"), 200, 10),    # the paper's
    (dict(method="sre", burn_in=7, thin=3), 7, 3),    # explicit settings win
    (dict(), 200, 10),                                # SNPE-C has no chains to go on: the first target's
])
def test_the_preset_sets_burn_in_and_thin_unless_the_caller_does(monkeypatch, kwargs, burn_in, thin):
    import sbi_lite.api

    seen = []
    monkeypatch.setattr(sbi_lite.api, "run_rounds", lambda simulator, prior, x0, method, cfg, *a, **kw: seen.append(cfg))
    infer(Counting(), PRIOR, [0.0, 0.0], **{**FAST, **kwargs})
    assert [(c.burn_in, c.thin) for c in seen] == [(burn_in, thin)]


def test_num_atoms_is_checked_against_the_presets_minibatch_size():
    for kwargs, batch in ((dict(), 400), (dict(preset="paper"), 100)):
        with pytest.raises(ValueError, match=rf"num_atoms must be in \[2, batch size {batch}\].* got {batch + 1}"):
            infer(Counting(), PRIOR, [0.0, 0.0], **{**FAST, "train_config": None, "num_atoms": batch + 1, **kwargs})
