"""Expected coverage of highest-density regions (Hermans et al. 2022, arXiv 2110.06581).

For a test pair (θ*, x*) and L draws θ_j ~ q(·|x*), the HPD rank
``c = #{j : log q(θ_j|x*) > log q(θ*|x*)}`` (ties at random) counts draws that are MORE probable
than the truth: θ* lies in the HPD region of credibility ``t`` iff c/(L+1) < t. Only the
comparison within one x matters, so log q may be unnormalised (SNL and SRE potentials, or a
prior-truncated SNPE density without its normaliser), as long as it is the density the draws
come from. If q is the exact posterior, c is uniform on {0, …, L}.

The coverage curve EC(t) = fraction of test pairs with c < t·(L+1), at t = k/(L+1), is therefore
the ECDF of the HPD ranks, and under the null N·EC(t) ~ Binomial(N, t) exactly. Its band is the
SIMULTANEOUS ECDF band of Säilynoja et al. (``ecdf.py``), chosen over Bonferroni-corrected
pointwise binomial bands because it holds the whole curve at exactly 1−α (by simulation) while
Bonferroni over K levels is conservative and wider; the matching γ test gives one calibrated
p-value (one joint statistic: nothing to correct).

Verdict: "calibrated" when p ≥ α; otherwise "over-confident" when the HPD ranks are too large
on average (curve below the diagonal: regions too small, the truth too often outside) and
"under-confident" when too small. A BIASED posterior also pushes the truth out of its HPD
regions, so it reads "over-confident" here: HPD coverage cannot tell bias from over-confidence;
SBC's per-parameter ranks can.

Power on the Gaussian-linear model of ``sbc.py`` (D = 2, L = 100, α = 0.05, 200 repetitions):
false-positive rate 0.055, 0.040, 0.095 at N = 20, 100, 500 (0.057 over 600 repetitions at
N = 500). Rejection rate of a wrong posterior:

- shift ½ sd per coordinate: 0.80 (N=200), 0.865 (250), 0.91 (300), 0.965 (350): a half-sd
  bias needs N ≈ 300–350 here, six times SBC's (HPD regions see a bias only through the
  slight growth of the Mahalanobis distance);
- sd × 0.7: 0.78 (20), 0.875 (25), 0.925 (30), 0.965 (40): N ≈ 30–40;
- sd × 1.5: 0.755 (20), 0.915 (25), 0.93 (30): N ≈ 25–30.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sbi_lite.diagnostics._arrays import as_array, break_ties, check_alpha
from sbi_lite.diagnostics.ecdf import ecdf_band, ecdf_gamma_test, rank_ecdf, shape_scores
from sbi_lite.seeding import Seed

__all__ = ["CoverageResult", "hpd_ranks", "expected_coverage"]

#: N at which ``tests/test_diagnostics.py`` asserts power ≥ 0.9 (module docstring).
POWER = {"bias": 350, "over": 40, "under": 30}


def hpd_ranks(log_prob_true, log_prob_draws, *, seed: Seed = 0) -> np.ndarray:
    """HPD ranks c = #{j : log q(θ_j|x) > log q(θ*|x)} per test pair, ties at random.

    Args:
        log_prob_true: (N,) log q(θ*_i | x_i), possibly unnormalised; −inf allowed.
        log_prob_draws: (N, L) log q(θ_ij | x_i) of the L draws, same normalisation per row.
        seed: tie-breaking stream.

    Returns:
        (N,) int64 in 0..L; c/(L+1) is the credibility at which θ* enters the HPD region.

    Example:
        >>> hpd_ranks(np.array([-1.0, -5.0]), np.array([[-0.5, -2.0], [-0.5, -2.0]])).tolist()
        [1, 2]
    """
    lp_true = as_array("log_prob_true", log_prob_true, 1, allow_inf=True)
    lp_draws = as_array("log_prob_draws", log_prob_draws, 2, allow_inf=True)
    if lp_draws.shape[0] != lp_true.shape[0]:
        raise ValueError(f"log_prob_draws must have N={lp_true.shape[0]} rows like log_prob_true; "
                         f"got shape {lp_draws.shape}")
    above = (lp_draws > lp_true[:, None]).sum(1)
    equal = (lp_draws == lp_true[:, None]).sum(1)
    return break_ties(above, equal, seed)


@dataclass(frozen=True)
class CoverageResult:
    """Outcome of ``expected_coverage``.

    Attributes:
        levels: (K,) credibility levels t = k/(L+1). coverage: (K,) empirical EC(t).
        lower, upper: (K,) simultaneous 1−α band for EC under calibration.
        ranks: (N,) HPD ranks. num_draws: L. p_value: γ test. gamma: observed γ.
        z_mean: standardised mean HPD rank (> 0: over-confident side). verdict: see module.
        alpha: level.
    """

    levels: np.ndarray
    coverage: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    ranks: np.ndarray
    num_draws: int
    p_value: float
    gamma: float
    z_mean: float
    verdict: str
    alpha: float

    def at(self, credibility) -> np.ndarray:
        """Empirical coverage of the HPD regions at the given credibility levels."""
        t = np.atleast_1d(np.asarray(credibility, dtype=np.float64))
        return (self.ranks[:, None] < t * (self.num_draws + 1)).mean(0)

    def summary(self, credibility=(0.5, 0.68, 0.9, 0.95, 0.99)) -> pd.DataFrame:
        """Empirical coverage at a few credibility levels, with the band there; p and verdict in attrs."""
        t = np.asarray(credibility, dtype=np.float64)
        table = pd.DataFrame({"credibility": t, "coverage": self.at(t),
                              "band_lower": np.interp(t, self.levels, self.lower),
                              "band_upper": np.interp(t, self.levels, self.upper)})
        table.attrs.update(p_value=self.p_value, verdict=self.verdict, n=len(self.ranks))
        return table


def expected_coverage(log_prob_true, log_prob_draws, *, alpha: float = 0.05, max_points: int = 100,
                      seed: Seed = 0) -> CoverageResult:
    """Expected HPD coverage curve with a simultaneous band and a calibrated test.

    Args:
        log_prob_true: (N,) log q(θ*_i|x_i) (unnormalised is fine). log_prob_draws: (N, L).
        alpha: level of the band and the test. max_points: levels K on the curve.
        seed: tie-breaking stream (the band's simulated null uses a fixed seed: deterministic).

    Returns:
        ``CoverageResult``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> z_true, z_draws = rng.normal(size=(300, 2)), rng.normal(size=(300, 100, 2))
        >>> lp = lambda z, s: -0.5 * (z**2).sum(-1) / s**2  # log N(0, s² I) up to a constant
        >>> expected_coverage(lp(z_true, 1.0), lp(z_draws, 1.0)).verdict
        'calibrated'
        >>> expected_coverage(lp(z_true, 0.7), lp(0.7 * z_draws, 0.7)).verdict  # q too narrow
        'over-confident'
    """
    alpha = check_alpha(alpha)
    ranks = hpd_ranks(log_prob_true, log_prob_draws, seed=seed)
    num_draws = np.shape(log_prob_draws)[1]
    levels, coverage = rank_ecdf(ranks, num_draws + 1, max_points)
    band = ecdf_band(len(ranks), num_draws + 1, alpha=alpha, max_points=max_points)
    gamma, p = ecdf_gamma_test(ranks, num_draws + 1, max_points=max_points)
    z_mean = float(shape_scores(ranks, num_draws + 1)[0][0])
    verdict = "calibrated" if p[0] >= alpha else ("over-confident" if z_mean > 0 else "under-confident")
    return CoverageResult(levels=levels, coverage=coverage, lower=band.lower, upper=band.upper, ranks=ranks,
                          num_draws=num_draws, p_value=float(p[0]), gamma=float(gamma[0]), z_mean=z_mean,
                          verdict=verdict, alpha=alpha)
