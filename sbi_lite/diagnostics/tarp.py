"""TARP: tests of accuracy with random points (Lemos et al. 2023, arXiv 2302.03026).

θ is first STANDARDISED (by the prior's location/scale when given, else by the test θ*'s mean and
sd): references and distances in raw units let one large-scale parameter hide the others (sbi
issue 1832). For each test pair i a reference θ_r,i is drawn in the scaled space (uniform in the
box spanned by the scaled θ*, or from a Gaussian fitted to them), and
``c_i = #{j : |θ_r,i − θ_ij| < |θ_r,i − θ*_i|}`` (ties at random) counts draws closer to the
reference than the truth. With the exact posterior, θ* and the draws are exchangeable given x and
the reference is independent of them given x, so c_i is uniform on {0, …, L}. The expected
coverage probability curve ECP(t) = fraction of c_i < t·(L+1), at t = k/(L+1).

Band: a nonparametric BOOTSTRAP over test pairs, simultaneous over t (sup-norm: the 1−α quantile
of max_t |ECP*_b(t) − ECP(t)|); it is a confidence band for the true ECP curve, so the diagonal
leaving it is evidence of miscalibration. Test: the area between the curve and the diagonal,
``A = ∫ |ECP(t) − t| dt``, against its null distribution, simulated exactly from uniform ranks
(cached) — NOT a KS test between the curve and the grid (the curve's points are not samples;
that test is not calibrated). Also ATC = ∫_{½}^{1} (ECP − t) dt with a bootstrap interval.

Verdict: "calibrated" when p ≥ α; otherwise from the z-scores of the mean and the spread of the
ranks (``ecdf.shape_scores``): both > 0 (truth farther from the reference than the draws, ranks
at both ends; ATC < 0) → "over-confident"; both < 0 (ATC > 0) → "under-confident"; opposite signs
→ "biased". The last is a heuristic MEASURED on the Gaussian-linear model (N = 4000, L = 100:
shift ½ sd gives z = (−4.7, +5.7); sd × 0.7 gives (+12.7, +22.9); sd × 1.5 gives (−18.5, −16.5));
a bias towards the references' centre may read "over-confident" instead.
References independent of x make ECP = t necessary but NOT sufficient for calibration; pass
x-dependent ``references`` to make it sufficient.

Power on the Gaussian-linear model of ``sbc.py`` (D = 2, L = 100, α = 0.05, Gaussian references,
200 repetitions): false-positive rate 0.035, 0.045, 0.055 at N = 50, 500, 1500. Rejection rate:

- shift ½ sd per coordinate: 0.26 (N=200), 0.475 (400), 0.855 (1000), 0.89 (1200), 0.925 (1400),
  0.96 (1600): TARP is the WEAKEST check against bias, N ≈ 1400 against SBC's 50 (uniform
  references: 0.89 at N = 1500);
- sd × 0.7: 0.71 (100), 0.865 (150), 0.92 (175), 0.955 (200): N ≈ 175;
- sd × 1.5: 0.78 (60), 0.87 (70), 0.925 (80), 0.925 (90), 0.97 (100): N ≈ 80–90.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from sbi_lite.diagnostics._arrays import as_array, break_ties, check_alpha
from sbi_lite.diagnostics.ecdf import evaluation_points, rank_ecdf, shape_scores
from sbi_lite.seeding import Seed, seed_sequence

__all__ = ["TARPResult", "tarp_ranks", "tarp"]

#: N at which ``tests/test_diagnostics.py`` asserts power ≥ 0.9 (module docstring).
POWER = {"bias": 1400, "over": 175, "under": 90}


def tarp_ranks(theta_true, draws, *, references=None, loc=None, scale=None, reference: str = "gaussian",
               seed: Seed = 0) -> tuple[np.ndarray, np.ndarray]:
    """TARP ranks c_i = #{j : |r_i − θ_ij| < |r_i − θ*_i|} in the standardised space.

    Args:
        theta_true: (N, D). draws: (N, L, D).
        references: optional (N, D) references in θ units (e.g. depending on x); else drawn.
        loc, scale: (D,) standardisation (e.g. the prior's mean and sd); default θ*'s mean, sd.
        reference: "gaussian" (fitted to the scaled θ*; default, measured slightly more powerful
            against bias: 0.94 vs 0.89 at N = 1500) or "uniform" (in the box of the scaled θ*).
        seed: stream for references and ties.

    Returns:
        ``(ranks (N,) int64 in 0..L, references (N, D) in θ units)``.

    Example:
        >>> theta = np.array([[0.0, 0.0], [1.0, 1.0]])
        >>> draws = np.array([[[0.1, 0.0], [3.0, 3.0]], [[1.0, 1.2], [5.0, 5.0]]])
        >>> tarp_ranks(theta, draws, references=np.array([[0.0, 0.1], [0.0, 0.0]]))[0].tolist()
        [0, 0]
    """
    theta_true = as_array("theta_true", theta_true, 2)
    draws = as_array("draws", draws, 3)
    n, d = theta_true.shape
    if draws.shape[0] != n or draws.shape[2] != d:
        raise ValueError(f"draws must have shape (N={n}, L, D={d}) to match theta_true; got {draws.shape}")
    if reference not in ("uniform", "gaussian"):
        raise ValueError(f"reference must be 'uniform' or 'gaussian', got {reference!r}")
    loc = theta_true.mean(0) if loc is None else as_array("loc", np.broadcast_to(loc, (d,)), 1)
    scale = theta_true.std(0) if scale is None else as_array("scale", np.broadcast_to(scale, (d,)), 1)
    if (scale <= 0).any():
        raise ValueError(f"scale must be positive; got {scale} (pass scale= when θ* is constant)")
    ref_ss, tie_ss = seed_sequence(seed).spawn(2)
    t_true, t_draws = (theta_true - loc) / scale, (draws - loc) / scale
    if references is not None:
        refs = (as_array("references", references, 2) - loc) / scale
        if refs.shape != (n, d):
            raise ValueError(f"references must have shape (N={n}, D={d}); got {refs.shape}")
    else:
        rng = np.random.default_rng(ref_ss)
        if reference == "uniform":
            refs = rng.uniform(t_true.min(0), t_true.max(0), size=(n, d))
        else:
            cov = np.atleast_2d(np.cov(t_true, rowvar=False)) if n > 1 else np.eye(d)
            refs = rng.multivariate_normal(t_true.mean(0), cov, size=n)
    dist_true = np.linalg.norm(t_true - refs, axis=-1)
    dist_draws = np.linalg.norm(t_draws - refs[:, None], axis=-1)
    ranks = break_ties((dist_draws < dist_true[:, None]).sum(1), (dist_draws == dist_true[:, None]).sum(1), tie_ss)
    return ranks, refs * scale + loc


def _curve_stats(ecp: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area ∫|ECP − t| and ATC ∫_{½}^{1}(ECP − t) on the evenly spaced grid, for (..., K) curves."""
    dev = ecp - z
    return np.abs(dev).mean(-1), (dev * (z > 0.5)).mean(-1)


@lru_cache(maxsize=64)
def _null_areas(n: int, num_values: int, max_points: int, num_simulations: int) -> np.ndarray:
    z = evaluation_points(num_values, max_points) / num_values
    cells = np.diff(np.concatenate([[0.0], z, [1.0]]))
    counts = np.cumsum(np.random.default_rng(0).multinomial(n, cells, size=num_simulations), axis=1)[:, :-1]
    areas = np.sort(_curve_stats(counts / n, z)[0])
    areas.setflags(write=False)
    return areas


@dataclass(frozen=True)
class TARPResult:
    """Outcome of ``tarp``.

    Attributes:
        levels: (K,) credibility t. ecp: (K,) expected coverage probability. lower, upper: (K,)
        simultaneous bootstrap band. area: ∫|ECP − t|. atc: ∫_{½}^{1}(ECP − t). atc_interval:
        bootstrap (α/2, 1−α/2) interval of ATC. p_value: area vs its simulated null. ranks: (N,).
        references: (N, D). num_draws: L. z_mean, z_spread: rank shape scores. verdict: see
        module. alpha: level.
    """

    levels: np.ndarray
    ecp: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    area: float
    atc: float
    atc_interval: tuple[float, float]
    p_value: float
    ranks: np.ndarray
    references: np.ndarray
    num_draws: int
    z_mean: float
    z_spread: float
    verdict: str
    alpha: float

    def summary(self) -> pd.DataFrame:
        """One row: N, L, area, ATC and its interval, p-value, verdict."""
        return pd.DataFrame([{"n": len(self.ranks), "num_draws": self.num_draws, "area": self.area,
                              "atc": self.atc, "atc_low": self.atc_interval[0], "atc_high": self.atc_interval[1],
                              "p_value": self.p_value, "z_mean": self.z_mean, "z_spread": self.z_spread,
                              "verdict": self.verdict}])


def tarp(theta_true, draws, *, references=None, loc=None, scale=None, reference: str = "gaussian",
         alpha: float = 0.05, num_bootstrap: int = 500, num_null: int = 5000, max_points: int = 100,
         seed: Seed = 0) -> TARPResult:
    """TARP curve with a simultaneous bootstrap band and a calibrated area test.

    Args:
        theta_true: (N, D). draws: (N, L, D). references, loc, scale, reference: ``tarp_ranks``.
        alpha: level. num_bootstrap: B resamples of the test pairs (band, ATC interval).
        num_null: null simulations of the area (p resolution 1/num_null). max_points: K levels.
        seed: stream for references, ties and the bootstrap.

    Returns:
        ``TARPResult``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> theta = rng.normal(size=(300, 2)); x = theta + rng.normal(size=(300, 2))
        >>> draws = lambda s: x[:, None] / 2 + s * np.sqrt(0.5) * rng.normal(size=(300, 100, 2))
        >>> tarp(theta, draws(1.0)).verdict, tarp(theta, draws(2.0)).verdict
        ('calibrated', 'under-confident')
    """
    alpha = check_alpha(alpha)
    if int(num_bootstrap) < 1:
        raise ValueError(f"num_bootstrap must be >= 1, got {num_bootstrap}")
    if int(num_null) < 100:
        raise ValueError(f"num_null must be >= 100, got {num_null}")
    rank_ss, boot_ss = seed_sequence(seed).spawn(2)
    ranks, refs = tarp_ranks(theta_true, draws, references=references, loc=loc, scale=scale,
                             reference=reference, seed=rank_ss)
    n, num_values = len(ranks), np.shape(draws)[1] + 1
    z, ecp = rank_ecdf(ranks, num_values, max_points)
    area, atc = _curve_stats(ecp, z)
    null = _null_areas(n, num_values, int(max_points), int(num_null))
    p = (1.0 + len(null) - np.searchsorted(null, area, side="left")) / (len(null) + 1.0)
    inside = (ranks[:, None] < evaluation_points(num_values, max_points)).astype(np.float64)  # (N, K)
    weights = np.random.default_rng(boot_ss).multinomial(n, np.full(n, 1.0 / n), size=int(num_bootstrap))
    boot = weights @ inside / n  # (B, K)
    half = np.quantile(np.abs(boot - ecp).max(1), 1 - alpha)
    boot_atc = _curve_stats(boot, z)[1]
    z_mean, z_spread = (float(v[0]) for v in shape_scores(ranks, num_values))
    if p >= alpha:
        verdict = "calibrated"
    elif z_mean > 0 and z_spread > 0:
        verdict = "over-confident"
    elif z_mean < 0 and z_spread < 0:
        verdict = "under-confident"
    else:
        verdict = "biased"
    return TARPResult(levels=z, ecp=ecp, lower=np.clip(ecp - half, 0, 1), upper=np.clip(ecp + half, 0, 1),
                      area=float(area), atc=float(atc),
                      atc_interval=tuple(float(q) for q in np.quantile(boot_atc, [alpha / 2, 1 - alpha / 2])),
                      p_value=float(p), ranks=ranks, references=refs, num_draws=num_values - 1, z_mean=z_mean,
                      z_spread=z_spread, verdict=verdict,
                      alpha=alpha)
