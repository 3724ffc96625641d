"""Calibration diagnostics (SBC, HPD coverage, TARP) validated on an analytic posterior.

Gaussian-linear model: θ ~ N(0, I_2), x = θ + N(0, I): the posterior is N(x/2, I/2), sampled
exactly (no training, no MCMC). Wrong posteriors: every coordinate shifted by ½ posterior sd
("bias"), sd × 0.7 ("over"), sd × 1.5 ("under"). Each test's false-positive rate at α = 0.05 and
its power at the N stated in its module's ``POWER`` table are asserted over ≥ 50 seeded
repetitions (numbers measured with ``benchmarks/diagnostics_power.py``, 200 repetitions).
"""

import importlib

import numpy as np
import pytest
import torch
from scipy import stats

from sbi_lite.diagnostics import (chi2_uniformity, ecdf_band, ecdf_gamma_test, expected_coverage, holm, hpd_ranks,
                                  rank_ecdf, run_sbc, sbc, sbc_ranks, tarp, tarp_ranks)

ERRORS = {"exact": (0.0, 1.0), "bias": (0.5, 1.0), "over": (0.0, 0.7), "under": (0.0, 1.5)}
L = 100


def gaussian_linear(n, error, *, d=2, num_draws=L, seed=0):
    """θ* (n, d), draws (n, L, d), log q(θ*) (n,), log q(draws) (n, L) (unnormalised)."""
    shift, widen = ERRORS[error]
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(n, d))
    x = theta + rng.normal(size=(n, d))
    sd = np.sqrt(0.5)
    mean = x / 2 + shift * sd
    s = widen * sd
    draws = mean[:, None] + s * rng.normal(size=(n, num_draws, d))
    logq = lambda t, m: -0.5 * (((t - m) / s) ** 2).sum(-1)
    return theta, draws, logq(theta, mean), logq(draws, mean[:, None])


REJECTS = {
    "sbc": lambda th, dr, lt, ld, s: not sbc(th, dr, seed=s).calibrated,
    "sbc_chi2": lambda th, dr, lt, ld, s: not sbc(th, dr, test="chi2", seed=s).calibrated,
    "coverage": lambda th, dr, lt, ld, s: expected_coverage(lt, ld, seed=s).p_value < 0.05,
    "tarp": lambda th, dr, lt, ld, s: tarp(th, dr, num_bootstrap=1, seed=s).p_value < 0.05,
}
MODULES = {name: importlib.import_module(f"sbi_lite.diagnostics.{name}") for name in ("sbc", "coverage", "tarp")}


def rejection_rate(test, error, n, reps, offset=7):
    return np.mean([REJECTS[test](*gaussian_linear(n, error, seed=(offset, n, r)), r) for r in range(reps)])


# ---------------------------------------------------------------- FPR and power (the heart)

@pytest.mark.parametrize("test", ["sbc", "sbc_chi2", "coverage", "tarp"])
def test_false_positive_rate_of_the_exact_posterior(test):
    n = 200
    assert rejection_rate(test, "exact", n, reps=100) <= 0.10


def test_sbc_controls_the_family_wise_error_across_six_parameters():
    rejected = [not sbc(*gaussian_linear(100, "exact", d=6, seed=(13, r))[:2], seed=r).calibrated for r in range(150)]
    assert np.mean(rejected) <= 0.09  # uncorrected: 1 − 0.95⁶ ≈ 0.26


@pytest.mark.parametrize("test,error", [(t, e) for t in ("sbc", "coverage", "tarp") for e in ("bias", "over", "under")])
def test_power_at_the_stated_number_of_simulations(test, error):
    n = MODULES[test].POWER[error]
    assert rejection_rate(test, error, n, reps=60) >= 0.9


# ---------------------------------------------------------------- verdicts on the four cases

EXPECTED = {
    "sbc": {"exact": "calibrated", "bias": "biased", "over": "over-confident", "under": "under-confident"},
    "coverage": {"exact": "calibrated", "bias": "over-confident", "over": "over-confident", "under": "under-confident"},
    "tarp": {"exact": "calibrated", "bias": "biased", "over": "over-confident", "under": "under-confident"},
}


@pytest.mark.parametrize("error", list(ERRORS))
def test_verdicts_read_the_shape(error):
    theta, draws, lt, ld = gaussian_linear(2000, error, seed=3)
    result = sbc(theta, draws)
    assert result.verdict == [EXPECTED["sbc"][error]] * 2
    assert list(result.summary()["verdict"]) == result.verdict
    assert expected_coverage(lt, ld).verdict == EXPECTED["coverage"][error]
    assert tarp(theta, draws, num_bootstrap=50).verdict == EXPECTED["tarp"][error]


# ---------------------------------------------------------------- ranks, bins, bands: the parts

def test_ranks_count_draws_below_the_truth_and_break_ties_uniformly():
    theta = np.array([[0.5, 10.0], [2.0, -1.0]])
    draws = np.array([[[0.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [1.0, 0.0]]])
    assert sbc_ranks(theta, draws).tolist() == [[1, 2], [2, 0]]
    tied = sbc_ranks(np.zeros((4000, 1)), np.zeros((4000, 3, 1)), seed=0)[:, 0]  # all equal: U{0..3}
    assert np.bincount(tied, minlength=4) / 4000 == pytest.approx([0.25] * 4, abs=0.03)


def test_chi2_bins_are_aligned_to_rank_values_with_five_expected_counts():
    r = np.random.default_rng(0).integers(0, 7, size=(40, 1))  # V = 7, N = 40: one value per bin, 5.7 expected
    assert chi2_uniformity(r, 7)[2] == 7
    # N = 30: 30/7 = 4.3 < 5 per value, and 4..6 bins of whole rank values leave a 1-value bin: 3 bins
    assert chi2_uniformity(r[:30], 7)[2] == 3
    stat, p, bins = chi2_uniformity(np.repeat(np.arange(7), 10)[:, None], 7)
    assert stat[0] == 0.0 and p[0] == 1.0
    assert chi2_uniformity(np.zeros((70, 1), int), 7)[1][0] < 1e-20


def test_holm_adjusts_in_step_down_order():
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]).tolist() == [0.5]


def test_ecdf_band_is_simultaneous_and_a_pointwise_band_is_not():
    n, values, sims = 100, 101, 2000
    band = ecdf_band(n, values, alpha=0.05)
    ranks = np.random.default_rng(5).integers(0, values, size=(n, sims))
    _, f = rank_ecdf(ranks, values)  # (K, sims)
    outside = ((f < band.lower[:, None]) | (f > band.upper[:, None])).any(0).mean()
    assert 0.03 <= outside <= 0.07
    pointwise_lo = stats.binom.ppf(0.025, n, band.z) / n
    pointwise_hi = stats.binom.ppf(0.975, n, band.z) / n
    assert ((f < pointwise_lo[:, None]) | (f > pointwise_hi[:, None])).any(0).mean() > 0.3


def test_gamma_test_is_calibrated_on_coarse_discrete_ranks_where_a_continuous_ks_is_not():
    values, n = 10, 200  # L = 9 draws: strongly discrete ranks
    ranks = np.random.default_rng(2).integers(0, values, size=(n, 1000))
    _, p = ecdf_gamma_test(ranks, values)
    assert 0.02 <= (p < 0.05).mean() <= 0.08
    ks = np.array([stats.kstest(ranks[:, i] / (values - 1), "uniform").pvalue for i in range(200)])
    assert (ks < 0.05).mean() > 0.5  # sbi's check_sbc mistake: KS on discrete ranks rejects the truth


def test_logq_statistic_rank_is_the_hpd_rank():
    theta, draws, lt, ld = gaussian_linear(300, "over", seed=1)
    ranks = sbc_ranks(theta, draws, statistics=-ld[..., None], true_statistics=-lt[:, None])
    assert np.array_equal(ranks[:, 2], hpd_ranks(lt, ld))
    result = sbc(theta, draws, statistics=-ld[..., None], true_statistics=-lt[:, None])
    assert result.names == ["θ1", "θ2", "statistic1"] and result.p_values[2] < 0.001
    assert result.z_mean[2] > 5  # the truth is less probable than the draws: a one-sided shift


def test_coverage_curve_and_band_at_exact_levels():
    theta, draws, lt, ld = gaussian_linear(400, "exact", seed=4)
    result = expected_coverage(lt, ld)
    assert result.levels[0] == pytest.approx(1 / 101) and len(result.levels) == 100
    assert ((result.lower <= result.coverage) & (result.coverage <= result.upper)).all()
    assert result.at(0.9)[0] == pytest.approx(0.9, abs=0.05)
    over = expected_coverage(*gaussian_linear(400, "over", seed=4)[2:])
    assert over.at(0.9)[0] < 0.8 and over.summary()["coverage"].iloc[3] == pytest.approx(over.at(0.95)[0])


def test_tarp_bootstrap_band_holds_the_diagonal_for_the_exact_posterior():
    hits = []
    for r in range(40):
        res = tarp(*gaussian_linear(300, "exact", seed=(11, r))[:2], num_bootstrap=300, seed=r)
        hits.append(((res.lower <= res.levels) & (res.levels <= res.upper)).all())
    assert np.mean(hits) >= 0.85


def test_tarp_needs_scaling_when_one_parameter_is_a_thousand_times_larger():
    theta, draws, _, _ = gaussian_linear(500, "exact", seed=8)
    _, wide, _, _ = gaussian_linear(500, "under", seed=8)
    big = np.array([1000.0, 1.0])
    draws = np.concatenate([draws[..., :1], wide[..., 1:]], axis=-1) * big  # θ2 under-confident, θ1 exact
    theta = theta * big
    assert tarp(theta, draws, num_bootstrap=1).p_value < 0.01  # standardised: the error is seen
    unscaled = tarp(theta, draws, loc=0.0, scale=1.0, num_bootstrap=1)
    assert unscaled.p_value > 0.05  # sbi issue 1832: raw units let θ1 hide θ2's error


def test_results_are_deterministic_under_a_seed():
    theta, draws, lt, ld = gaussian_linear(200, "bias", seed=9)
    assert np.array_equal(tarp(theta, draws, seed=3).ecp, tarp(theta, draws, seed=3).ecp)
    assert tarp(theta, draws, seed=3).references.tolist() != tarp(theta, draws, seed=4).references.tolist()
    assert sbc(theta, draws, seed=1).summary().equals(sbc(theta, draws, seed=1).summary())


# ---------------------------------------------------------------- run_sbc

PRIOR = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))


def simulator(theta, rng):
    return theta + rng.normal(size=theta.shape)


def sampler(width):
    def sample(x, n, seed):
        g = torch.Generator().manual_seed(seed)
        return x / 2 + width * 0.5**0.5 * torch.randn(n, *x.shape, generator=g)
    return sample


def test_run_sbc_batched_and_per_x_agree_on_the_verdict():
    batched = run_sbc(sampler(1.0), PRIOR, simulator, 300, 50, batched=True, seed=0)
    per_x = run_sbc(sampler(1.0), PRIOR, simulator, 300, 50, seed=0, progress=False)
    assert batched.calibrated and per_x.calibrated
    assert torch.equal(batched.theta, per_x.theta) and batched.x.shape == (300, 2)
    wrong = run_sbc(sampler(0.5), PRIOR, simulator, 300, 50, batched=True, seed=0)
    assert wrong.verdict == ["over-confident"] * 2
    again = run_sbc(sampler(0.5), PRIOR, simulator, 300, 50, batched=True, seed=0)
    assert np.array_equal(wrong.ranks, again.ranks)


def test_run_sbc_names_a_wrongly_shaped_sampler():
    with pytest.raises(ValueError, match=r"\(L, N, D\)"):
        run_sbc(lambda x, n, seed: torch.zeros(len(x), n, 2), PRIOR, simulator, 20, 5, batched=True)


# ---------------------------------------------------------------- argument validation

def test_errors_name_the_argument_and_the_value():
    theta, draws, lt, ld = gaussian_linear(20, "exact")
    with pytest.raises(ValueError, match=r"draws must have shape \(N=20"):
        sbc_ranks(theta, draws[:10])
    with pytest.raises(ValueError, match="draws must not be empty"):
        sbc_ranks(theta, draws[:, :0])
    bad = theta.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"theta_true\[3, 1\] = nan"):
        sbc(bad, draws)
    with pytest.raises(ValueError, match="log_prob_draws must have N=20"):
        expected_coverage(lt, ld[:5])
    with pytest.raises(ValueError, match="alpha must lie in"):
        tarp(theta, draws, alpha=1.5)
    with pytest.raises(ValueError, match="num_draws must be >= 1, got 0"):
        run_sbc(sampler(1.0), PRIOR, simulator, 20, 0)
    with pytest.raises(ValueError, match="references must have shape"):
        tarp_ranks(theta, draws, references=theta[:3])
    assert expected_coverage(np.full(20, -np.inf), ld).ranks.tolist() == [L] * 20  # −inf truth: outside


# ---------------------------------------------------------------- plots

def test_plots_return_figures_with_the_band_and_save_pngs(tmp_path):
    from sbi_lite import plot

    theta, draws, lt, ld = gaussian_linear(200, "over", seed=2)
    fig = plot.sbc_ecdf(sbc(theta, draws), path=tmp_path / "sbc.png")
    assert len(fig.axes) == 2 and "over-confident" in fig.axes[0].get_title()
    band = fig.axes[0].collections[0].get_paths()[0].vertices[:, 1]
    assert band.max() > 0 > band.min()
    fig = plot.coverage_curve(expected_coverage(lt, ld), path=tmp_path / "coverage.png")
    fig2 = plot.tarp_curve(tarp(theta, draws), path=tmp_path / "tarp.png")
    for name in ("sbc", "coverage", "tarp"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5000
    assert "over-confident" in fig.axes[0].get_title() and "TARP" in fig2.axes[0].get_title()
