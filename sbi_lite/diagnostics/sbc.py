"""Simulation-based calibration (Talts et al. 2018, arXiv 1804.06788).

Draw θ̃ ~ p(θ), x ~ p(x|θ̃), then L draws θ_l ~ q(θ|x); the rank r = #{l : f(θ_l) < f(θ̃)} of a
test quantity f (each coordinate; any statistic such as −log q(θ|x)) is uniform on {0, …, L}
for every x-averaged check when q is the exact posterior. Ties are broken at random.

Uniformity is tested per column with the γ test of the rank ECDF (``ecdf.py``, discrete-aware,
simultaneous band) and, for reference, a χ² test on bins aligned to the L+1 rank values with
≥ 5 expected counts each (never a continuous KS test on discrete ranks). Columns are corrected
for multiplicity with HOLM's step-down method (controls the family-wise error at α across the
D parameters and K statistics; uniformly more powerful than Bonferroni).

Verdict per column, from the shape of the rank distribution (``u = (r+½)/(L+1)``):
"calibrated" when the Holm-adjusted p ≥ α; otherwise the larger of two z-scores decides:
|z_mean| (ranks shifted to one side, the ECDF bows away from the diagonal) → "biased";
z_spread > 0 (ranks at both ends, ∪ shape, the truth falls in q's tails) → "over-confident";
z_spread < 0 (ranks in the middle, ∩ shape) → "under-confident".
The rule reads parameter columns. For a one-sided statistic such as −log q(θ|x), an
over-confident posterior shows as ranks shifted HIGH (the truth less probable than the draws), so
its column reads "biased" with z_mean > 0; read it as HPD coverage (``coverage.py``) would.

Power, measured on the Gaussian-linear model θ ~ N(0, I_2), x = θ + N(0, I), exact posterior
N(x/2, I/2) (L = 100 draws, α = 0.05, γ test with Holm over D = 2; 200 repetitions per N,
``benchmarks/diagnostics_power.py``). False-positive rate of the exact posterior: 0.035, 0.030,
0.075 at N = 20, 100, 500. Rejection rate of a wrong posterior:

- every coordinate shifted by ½ posterior sd: 0.56 (N=20), 0.75 (30), 0.89 (40), 0.975 (50):
  to detect a half-sd bias you need N ≈ 50;
- sd × 0.7 (over-confident): 0.81 (50), 0.875 (60), 0.92 (70), 0.975 (80): N ≈ 70–80;
- sd × 1.5 (under-confident): 0.79 (70), 0.87 (80), 0.95 (90), 0.935 (100): N ≈ 90.

(The χ² test on 20 aligned bins is slightly weaker against bias: 0.83 vs 0.985 at N = 50.)
``POWER`` holds the N at which ``tests/test_diagnostics.py`` asserts power ≥ 0.9.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from sbi_lite.diagnostics._arrays import as_array, break_ties, check_alpha
from sbi_lite.diagnostics.ecdf import ecdf_gamma_test, shape_scores
from sbi_lite.seeding import Seed, seed_sequence, torch_generator

__all__ = ["SBCResult", "sbc_ranks", "chi2_uniformity", "holm", "sbc", "run_sbc"]

#: Test simulations N for power ≥ 0.9 (module docstring): shift ½ sd, sd × 0.7, sd × 1.5.
POWER = {"bias": 50, "over": 80, "under": 90}


def sbc_ranks(theta_true, draws, *, statistics=None, true_statistics=None, seed: Seed = 0) -> np.ndarray:
    """SBC ranks r = #{l : f(θ_l) < f(θ̃)} per column, ties broken at random.

    Args:
        theta_true: (N, D) the θ̃ that generated each test x.
        draws: (N, L, D) L posterior draws per test x.
        statistics: optional (N, L, K) extra test quantities of the draws (e.g. −log q(θ_l|x)).
        true_statistics: (N, K) the same quantities at θ̃ (required with ``statistics``).
        seed: tie-breaking stream.

    Returns:
        (N, D+K) int64 ranks in 0..L.

    Example:
        >>> sbc_ranks(np.array([[0.5], [2.0]]), np.array([[[0.0], [1.0]], [[0.0], [1.0]]])).tolist()
        [[1], [2]]
    """
    theta_true = as_array("theta_true", theta_true, 2)
    draws = as_array("draws", draws, 3)
    n, d = theta_true.shape
    if draws.shape[0] != n or draws.shape[2] != d:
        raise ValueError(f"draws must have shape (N={n}, L, D={d}) to match theta_true; got {draws.shape}")
    if (statistics is None) != (true_statistics is None):
        raise ValueError("statistics and true_statistics must be given together")
    if statistics is not None:
        stat = as_array("statistics", statistics, 3, allow_inf=True)
        true = as_array("true_statistics", true_statistics, 2, allow_inf=True)
        if stat.shape[:2] != draws.shape[:2] or true.shape != (n, stat.shape[2]):
            raise ValueError(f"statistics must have shape (N={n}, L={draws.shape[1]}, K) and true_statistics "
                             f"(N={n}, K); got {stat.shape} and {true.shape}")
        draws = np.concatenate([draws, stat], axis=2)
        theta_true = np.concatenate([theta_true, true], axis=1)
    below = (draws < theta_true[:, None, :]).sum(axis=1)
    equal = (draws == theta_true[:, None, :]).sum(axis=1)
    return break_ties(below, equal, seed)


def chi2_uniformity(ranks, num_values: int, *, max_bins: int = 20) -> tuple[np.ndarray, np.ndarray, int]:
    """χ² test of uniform ranks on ``{0, …, V−1}`` with bins aligned to the rank values.

    The V values are split into J contiguous groups of (nearly) equal size; J is the largest
    number ≤ ``max_bins`` with ≥ 5 expected counts in every bin. X² ~ χ²(J−1) under the null.

    Args:
        ranks: (N,) or (N, C). num_values: V = L+1. max_bins: J at most.

    Returns:
        ``(statistic (C,), p_value (C,), J)``.

    Example:
        >>> r = np.random.default_rng(0).integers(0, 10, size=(100, 1))
        >>> stat, p, bins = chi2_uniformity(r, 10)
        >>> bins, bool(p[0] > 0.05)
        (10, True)
    """
    from scipy import stats

    ranks = np.asarray(ranks)
    ranks = ranks[:, None] if ranks.ndim == 1 else ranks
    n = len(ranks)
    for bins in range(min(int(max_bins), int(num_values)), 1, -1):
        edges = np.round(np.linspace(0, num_values, bins + 1)).astype(np.int64)
        expected = n * np.diff(edges) / num_values
        if expected.min() >= 5:
            break
    else:
        raise ValueError(f"chi2_uniformity needs >= 10 ranks for 2 bins of 5 expected counts; got N={n}")
    which = np.searchsorted(edges, ranks, side="right") - 1  # (N, C) bin index
    counts = np.stack([(which == j).sum(0) for j in range(bins)])  # (J, C)
    stat = (((counts - expected[:, None]) ** 2) / expected[:, None]).sum(0)
    return stat, stats.chi2.sf(stat, bins - 1), bins


def holm(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error control), same order as given.

    Example:
        >>> holm([0.01, 0.04, 0.03]).tolist()
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


@dataclass(frozen=True)
class SBCResult:
    """Outcome of ``sbc`` / ``run_sbc``.

    Attributes:
        ranks: (N, C) ranks in 0..L (C = D parameters + K statistics). num_draws: L.
        names: C column names. p_gamma, p_chi2: (C,) raw p-values of each test.
        p_values: (C,) Holm-adjusted p-values of the primary ``test``. z_mean, z_spread: (C,)
        shape scores (module docstring). verdict: C strings. alpha, test: as requested.
        theta, x: the test pairs when ``run_sbc`` made them, else None.
    """

    ranks: np.ndarray
    num_draws: int
    names: list[str]
    p_gamma: np.ndarray
    p_chi2: np.ndarray
    p_values: np.ndarray
    z_mean: np.ndarray
    z_spread: np.ndarray
    verdict: list[str]
    alpha: float
    test: str
    theta: torch.Tensor | None = field(default=None, repr=False)
    x: torch.Tensor | None = field(default=None, repr=False)

    @property
    def calibrated(self) -> bool:
        """True when no column is rejected at level α after the Holm correction."""
        return bool((self.p_values >= self.alpha).all())

    def summary(self) -> pd.DataFrame:
        """One row per column: rank mean (½ when calibrated), z-scores, p-values, verdict."""
        return pd.DataFrame({
            "rank_mean": (self.ranks.mean(0) + 0.5) / (self.num_draws + 1),
            "z_mean": self.z_mean, "z_spread": self.z_spread,
            "p_gamma": self.p_gamma, "p_chi2": self.p_chi2, "p_holm": self.p_values,
            "verdict": self.verdict,
        }, index=pd.Index(self.names, name="quantity"))


def verdicts(p_adjusted, z_mean, z_spread, alpha) -> list[str]:
    """The verdict rule of the module docstring, per column."""
    out = []
    for p, zm, zs in zip(p_adjusted, z_mean, z_spread):
        if p >= alpha:
            out.append("calibrated")
        elif abs(zm) >= abs(zs):
            out.append("biased")
        else:
            out.append("over-confident" if zs > 0 else "under-confident")
    return out


def sbc(theta_true, draws, *, statistics=None, true_statistics=None, names: Sequence[str] | None = None,
        alpha: float = 0.05, test: str = "gamma", seed: Seed = 0) -> SBCResult:
    """SBC from arrays: ranks, uniformity tests corrected with Holm, a verdict per column.

    Args:
        theta_true: (N, D). draws: (N, L, D). statistics, true_statistics: optional (N, L, K),
            (N, K) extra test quantities (``sbc_ranks``). names: D+K column names.
        alpha: family-wise level. test: "gamma" (ECDF γ test, default) or "chi2" decides.
        seed: tie-breaking stream (the γ test's simulated null uses a fixed seed: deterministic).

    Returns:
        ``SBCResult``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> theta = rng.normal(size=(300, 2)); x = theta + rng.normal(size=(300, 2))
        >>> draws = x[:, None] / 2 + np.sqrt(0.5) * rng.normal(size=(300, 100, 2))
        >>> sbc(theta, draws).verdict
        ['calibrated', 'calibrated']
        >>> sbc(theta, x[:, None] / 2 + 0.3 * rng.normal(size=(300, 100, 2))).verdict
        ['over-confident', 'over-confident']
    """
    alpha = check_alpha(alpha)
    if test not in ("gamma", "chi2"):
        raise ValueError(f"test must be 'gamma' or 'chi2', got {test!r}")
    ranks = sbc_ranks(theta_true, draws, statistics=statistics, true_statistics=true_statistics, seed=seed)
    num_draws = np.shape(draws)[1]
    cols = ranks.shape[1]
    names = list(names) if names is not None else [f"θ{i + 1}" for i in range(np.shape(draws)[2])] + [
        f"statistic{k + 1}" for k in range(cols - np.shape(draws)[2])]
    if len(names) != cols:
        raise ValueError(f"names must have {cols} entries (D + K); got {len(names)}")
    _, p_gamma = ecdf_gamma_test(ranks, num_draws + 1)  # the null depends on (N, L) only: fixed seed, cached
    _, p_chi2, _ = chi2_uniformity(ranks, num_draws + 1)
    p_adj = holm(p_gamma if test == "gamma" else p_chi2)
    z_mean, z_spread = shape_scores(ranks, num_draws + 1)
    return SBCResult(ranks=ranks, num_draws=num_draws, names=names, p_gamma=p_gamma, p_chi2=p_chi2,
                     p_values=p_adj, z_mean=z_mean, z_spread=z_spread,
                     verdict=verdicts(p_adj, z_mean, z_spread, alpha), alpha=alpha, test=test)


def run_sbc(posterior_sampler: Callable, prior, simulator: Callable, num_simulations: int, num_draws: int, *,
            seed: Seed = 0, batched: bool = False, alpha: float = 0.05, test: str = "gamma",
            n_jobs: int = 1, progress: bool | None = None) -> SBCResult:
    """Draw θ̃ from the prior, simulate x, sample the posterior at every x, then ``sbc``.

    Args:
        posterior_sampler: ``f(x, num_draws, seed=int) -> draws``. With ``batched=True`` it maps
            x (N, d_x) to (L, N, D) in one call (samples first); otherwise x (d_x,) to (L, D),
            called once per x under a tqdm bar.
        prior: an sbi_lite ``Prior`` or torch Distribution. simulator: as for ``simulate``.
        num_simulations: N test pairs (failed simulations are dropped). num_draws: L.
        seed: one stream for prior, simulator and sampler. batched, alpha, test: see above.
        n_jobs: simulation workers. progress: tqdm bars (default: when stderr is a terminal).

    Returns:
        ``SBCResult`` with ``theta`` (N, D) and ``x`` (N, d_x) set.

    Example:
        >>> prior = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
        >>> sim = lambda t, rng: t + rng.normal(size=t.shape)
        >>> def exact(x, n, seed):  # the analytic posterior N(x/2, I/2), batched
        ...     g = torch.Generator().manual_seed(seed)
        ...     return x / 2 + 0.5**0.5 * torch.randn(n, *x.shape, generator=g)
        >>> run_sbc(exact, prior, sim, 200, 50, batched=True).calibrated
        True
    """
    from tqdm.auto import tqdm

    from sbi_lite.priors import as_prior
    from sbi_lite.checks import progress_enabled
    from sbi_lite.simulate import simulate

    if int(num_simulations) < 10:
        raise ValueError(f"num_simulations must be >= 10, got {num_simulations}")
    if int(num_draws) < 1:
        raise ValueError(f"num_draws must be >= 1, got {num_draws}")
    prior_ss, sim_ss, post_ss, rank_ss = seed_sequence(seed).spawn(4)
    theta = as_prior(prior).sample((int(num_simulations),), generator=torch_generator(prior_ss))
    sims = simulate(simulator, theta, seed=sim_ss, n_jobs=n_jobs, progress=progress)
    theta, x = sims.valid()
    if len(theta) < 10:
        raise ValueError(f"only {len(theta)} of {num_simulations} simulations succeeded: {sims.errors}")
    seeds = [int(s.generate_state(1)[0]) for s in post_ss.spawn(1 if batched else len(x))]
    if batched:
        draws = torch.as_tensor(posterior_sampler(x, int(num_draws), seed=seeds[0]), device="cpu").transpose(0, 1)
    else:
        bar = tqdm(range(len(x)), desc="sbc posterior draws", disable=not progress_enabled(progress), leave=False)
        draws = torch.stack([torch.as_tensor(posterior_sampler(x[i], int(num_draws), seed=seeds[i]), device="cpu")
                             for i in bar])
    expected = (len(x), int(num_draws), theta.shape[1])
    if tuple(draws.shape) != expected:
        raise ValueError(f"posterior_sampler must return {'(L, N, D)' if batched else '(L, D)'} draws; "
                         f"got {tuple(draws.shape)} after stacking, expected (N, L, D) = {expected}")
    result = sbc(theta, draws, alpha=alpha, test=test, seed=rank_ss)
    return SBCResult(**{**result.__dict__, "theta": theta, "x": x})
