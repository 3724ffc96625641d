"""``diagnose`` on the Gaussian-linear model θ ~ N(0, I_2), x = θ + N(0, I), posterior N(x/2, I/2)."""

import numpy as np
import pytest
import torch

from sbi_lite.diagnostics import diagnose, truncation_box

PRIOR = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
SD = 0.5**0.5


def simulator(theta, rng):
    return theta + rng.normal(size=theta.shape)


def posterior(shift=0.0, width=1.0):
    """Batched sampler and log q(θ|x) of N(x/2 + shift·sd, (width·sd)² I)."""

    def sample(x, n, seed):
        g = torch.Generator().manual_seed(seed)
        return x / 2 + shift * SD + width * SD * torch.randn(n, *x.shape, generator=g)

    def log_prob(theta, x):
        return -0.5 * (((theta - x / 2 - shift * SD) / (width * SD)) ** 2).sum(-1)

    return sample, log_prob


class AtX0:
    def __init__(self, x0, shift=0.0):
        self.x0, self.shift = torch.as_tensor(x0, dtype=torch.float32), shift

    def sample(self, n, seed):
        return posterior(self.shift)[0](self.x0[None], n, seed)[:, 0]


@pytest.mark.parametrize("error,expected", [((0.0, 1.0), "calibrated"), ((0.0, 0.6), "over-confident"),
                                            ((1.0, 1.0), "biased"), ((0.0, 1.6), "under-confident")])
def test_verdict_per_parameter(error, expected):
    sample, log_prob = posterior(*error)
    report = diagnose(sample, PRIOR, simulator, num_simulations=300, log_prob=log_prob, seed=1)
    assert report.verdicts == {"θ1": expected, "θ2": expected}
    assert report.calibrated == (expected == "calibrated")
    assert list(report.table["check"]) == ["SBC", "SBC", "HPD coverage", "TARP"]


def test_false_positive_rate_of_the_combined_rule():
    sample, log_prob = posterior()
    wrong = [not diagnose(sample, PRIOR, simulator, num_simulations=100, num_draws=50, log_prob=log_prob,
                          seed=r).calibrated for r in range(60)]
    assert np.mean(wrong) <= 0.10


def test_a_joint_rejection_is_given_to_every_parameter_when_sbc_singles_out_none():
    # sd × 0.7 with N = 40: coverage's power is 0.9+, SBC's well below (module POWER tables)
    sample, log_prob = posterior(width=0.7)
    report = diagnose(sample, PRIOR, simulator, num_simulations=40, log_prob=log_prob, seed=4)
    sbc_rows = report.table[report.table["check"] == "SBC"]
    assert (sbc_rows["p_adjusted"] >= 0.05).all()
    assert report.table.set_index("check").loc["HPD coverage", "p_adjusted"] < 0.05
    assert report.verdicts == {"θ1": "over-confident", "θ2": "over-confident"}


def test_x0_checks_printout_and_figure(tmp_path):
    sample, log_prob = posterior()
    x0 = [0.5, 7.0]  # far outside what the prior predictive produces in x2
    report = diagnose(sample, PRIOR, simulator, num_simulations=300, x0=x0, posterior=AtX0([0.5, 1.0]),
                      names=["a", "b"], seed=2)
    table = report.table.set_index(["target", "check"])
    assert table.loc[("x0", "typicality"), "verdict"] == "atypical"
    assert table.loc[("x0: x2", "PPC"), "verdict"] == "misfit" and table.loc[("x0: x1", "PPC"), "verdict"] == "fits"
    assert report.verdicts == {"a": "calibrated", "b": "calibrated"}
    text = repr(report)
    assert "- a: **calibrated**" in text and "HPD coverage skipped" in text and "x0 is atypical" in text
    assert "| b | SBC |" in text
    fig = report.figure(path=tmp_path / "report.png")
    assert len(fig.axes) == 3 and "TARP" in fig.axes[2].get_title()  # no log_prob: no coverage panel
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_with_a_region_the_test_set_is_truncated():
    sample, log_prob = posterior()
    x0 = torch.tensor([[1.0, -1.0]])
    box = truncation_box(sample(x0, 5000, seed=0)[:, 0], tail=0.05, widen=0.0)  # ±1.16 around x0/2
    report = diagnose(sample, PRIOR, simulator, num_simulations=200, log_prob=log_prob, region=box, seed=3)
    assert report.calibrated and report.region is box
    assert bool(box.contains(report.sbc.theta).all()) and len(report.sbc.ranks) == report.num_tested
    assert report.sbc.theta.std(0).max() < 0.75  # uniform-ish on a 2.3-wide box, not the N(0, 1) prior
    assert report.num_tested < 200 and "test x were dropped" in report.to_markdown()
    assert "truncated prior" in report.to_markdown()
    again = diagnose(sample, PRIOR, simulator, num_simulations=200, log_prob=log_prob, region=box, seed=3)
    assert again.table.equals(report.table) and np.array_equal(again.sbc.ranks, report.sbc.ranks)


def test_errors_name_the_argument():
    sample, _ = posterior()
    with pytest.raises(ValueError, match="posterior was given without x0"):
        diagnose(sample, PRIOR, simulator, posterior=AtX0([0.0, 0.0]))
    with pytest.raises(ValueError, match="num_simulations must be >= 10, got 5"):
        diagnose(sample, PRIOR, simulator, num_simulations=5)
    with pytest.raises(ValueError, match=r"posterior_sampler must return \(L, N, D\)"):
        diagnose(lambda x, n, seed: torch.zeros(len(x), n, 2), PRIOR, simulator, num_simulations=20)


@pytest.mark.slow
def test_end_to_end_with_a_trained_snpe_estimator():
    """The contracts the lead wires up: the amortised estimator as batched sampler and log_prob,
    the ``Posterior`` at x0 for the predictive check (one round, 1000 simulations, ~10 s)."""
    from sbi_lite import BoxUniform, infer
    from sbi_lite.seeding import torch_generator
    from sbi_lite.train import TrainConfig

    prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))

    def noisy(theta, rng):
        return theta + 0.5 * rng.normal(size=theta.shape)

    x0 = [0.5, -0.5]
    post = infer(noisy, prior, x0, rounds=1, simulations_per_round=1000, seed=0, progress=False,
                 train_config=TrainConfig(max_epochs=30))
    est = post.estimator

    def sample(x, n, seed):
        with torch.no_grad():
            return est.sample(n, x, generator=torch_generator(seed))

    def log_prob(theta, x):
        with torch.no_grad():
            if theta.dim() == 2:
                return est.log_prob(theta, x)
            return est.log_prob(theta.flatten(0, 1), x.repeat(len(theta), 1)).reshape(theta.shape[:2])

    report = diagnose(sample, prior, noisy, num_simulations=200, log_prob=log_prob, x0=x0, posterior=post, seed=0)
    assert report.coverage is not None and report.sbc.ranks.shape == (200, 2)
    assert report.typicality.typical and report.predictive.flagged == []

    def shrunk(x, n, seed):  # half the spread around each x's mean: over-confident by construction
        draws = sample(x, n, seed)
        return draws.mean(0) + 0.5 * (draws - draws.mean(0))

    assert set(diagnose(shrunk, prior, noisy, num_simulations=200, seed=0).verdicts.values()) == {"over-confident"}
