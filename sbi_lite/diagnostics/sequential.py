"""Calibration of a SEQUENTIAL (multi-round) posterior at one x0: truncated SBC.

Why prior-predictive SBC is the wrong test. After several rounds, q(θ|x) was trained on θ drawn
from proposals focused on x0; it is meant to be right at x0 and for x like x0, not for every x the
prior can produce. SBC averages over x ~ p(x): it flags a good sequential posterior (wrong far from
x0, where nobody asked) and says little about x0 itself.

The truncated problem. Let R be a region holding (nearly) all of the posterior mass at x0 — here
an axis-aligned box around draws of q(·|x0), widened (``truncation_box``). Replace the prior by
the truncated prior p_R(θ) ∝ p(θ)·1_R(θ). Its posterior is
``p_R(θ|x) ∝ p(x|θ) p(θ) 1_R(θ) ∝ p(θ|x) 1_R(θ)``: the TRUE posterior restricted to R and
renormalised, for every x. So if q(θ|x) = p(θ|x) on R (up to a constant per x), then q restricted
to R is the exact posterior of the truncated problem, and SBC on the truncated problem —
θ̃ ~ p_R, x ~ p(x|θ̃), L draws of q(·|x) restricted to R — gives uniform ranks (Talts et al.'s
argument, applied to the truncated joint). This is the calibration notion of truncated sequential
NPE (Deistler et al. 2022): the test x come from p_R(x), concentrated on data like x0.

Leakage. The restriction to R is only trusted for x whose posterior lies mostly inside R: a test
x with fewer than L of ``oversample × L`` draws in R is DROPPED and counted (``num_leaking``).
The decision depends on x and on draws that are independent of θ̃ given x, so the kept ranks are
still uniform under the null; a large ``num_leaking`` says R is too tight (widen it) or q is wide.

What it detects: any miscalibration of q restricted to R on the data p_R(x) produces — bias,
over- and under-confidence near x0 — with the power of SBC and HPD coverage (``sbc.POWER``,
``coverage.POWER``: e.g. a ½-sd bias with N ≈ 50 test simulations, sd × 0.7 with N ≈ 40 by
coverage). What it cannot detect: errors of q outside R or for x unlike x0 (by design: they do not
matter at x0); how much mass q puts OUTSIDE R (the restriction renormalises it away); and a mode of
the true posterior at x0 outside R that q never samples (R is built from q's own draws — the
assumption is that q at x0 covers the true posterior's support).

Measured on the model of ``tests/test_sequential.py`` (θ ~ U[−10, 10]², x = θ + N(0, ½² I),
posterior a truncated Gaussian; N = 100 test simulations, L = 50, with HPD coverage, α = 0.05):
the exact posterior is rejected in 4.3 % of 300 repetitions; a posterior exact within 5 units of
x0 and shifted by 3 sd farther away is rejected by prior-predictive SBC in 100 % and by the
truncated check in 2 % of 100 repetitions; an over-confident one (sd × 0.7) is rejected by the
truncated check in 91 % (N = 50) and 100 % (N = 100).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from sbi_lite.diagnostics._arrays import as_array, check_alpha
from sbi_lite.diagnostics.coverage import CoverageResult, expected_coverage
from sbi_lite.diagnostics.sbc import SBCResult, sbc
from sbi_lite.diagnostics.testset import Box, make_test_set
from sbi_lite.seeding import Seed, seed_sequence

__all__ = ["truncation_box", "TruncatedSBCResult", "truncated_sbc"]


def truncation_box(draws, *, prior=None, tail: float = 1e-3, widen: float = 0.25) -> Box:
    """A box holding (nearly) all posterior mass at x0, from draws of q(·|x0).

    Per coordinate: the [tail, 1 − tail] quantiles of the draws, widened by ``widen`` × their span
    on each side, then clipped to the prior's bounds when it has a box support.

    Args:
        draws: (n, D) posterior draws at x0 (n ≥ 1/tail is sensible). prior: optional, for bounds.
        tail: quantile level cut at each end. widen: relative margin on each side.

    Returns:
        ``Box``.

    Example:
        >>> draws = torch.randn(10_000, 2, generator=torch.Generator().manual_seed(0))
        >>> box = truncation_box(draws)
        >>> [round(v) for v in box.high.tolist()], bool(box.contains(draws).float().mean() > 0.999)
        ([5, 5], True)
    """
    draws = as_array("draws", draws, 2)
    if not 0.0 <= float(tail) < 0.5:
        raise ValueError(f"tail must lie in [0, 0.5), got {tail}")
    if float(widen) < 0:
        raise ValueError(f"widen must be >= 0, got {widen}")
    low, high = np.quantile(draws, [tail, 1 - tail], axis=0)
    span = np.maximum(high - low, 1e-12 * np.maximum(np.abs(high), 1.0))
    low, high = low - widen * span, high + widen * span
    bounds = getattr(prior, "bounds", None) if prior is not None else None
    if bounds is not None:
        low = np.maximum(low, bounds[0].double().numpy())
        high = np.minimum(high, bounds[1].double().numpy())
    return Box(torch.as_tensor(low, device="cpu"), torch.as_tensor(high, device="cpu"))


@dataclass(frozen=True)
class TruncatedSBCResult:
    """Outcome of ``truncated_sbc``.

    Attributes:
        sbc: ``SBCResult`` on the truncated problem. coverage: ``CoverageResult`` or None (no
        ``log_prob``). box: the region. num_tested: test pairs kept. num_leaking: test x dropped
        (posterior mostly outside the box). num_failed: failed simulations.
    """

    sbc: SBCResult
    coverage: CoverageResult | None
    box: Box
    num_tested: int
    num_leaking: int
    num_failed: int

    @property
    def calibrated(self) -> bool:
        """No parameter rejected by SBC and (when run) coverage not rejected (each at α/2 then)."""
        return self.sbc.calibrated and (self.coverage is None or self.coverage.verdict == "calibrated")

    def summary(self) -> pd.DataFrame:
        """SBC's per-parameter table, plus the coverage row when run; counts in ``attrs``."""
        table = self.sbc.summary()
        if self.coverage is not None:
            table.loc["HPD coverage", ["p_holm", "verdict"]] = [self.coverage.p_value, self.coverage.verdict]
        table.attrs.update(num_tested=self.num_tested, num_leaking=self.num_leaking, num_failed=self.num_failed)
        return table


def truncated_sbc(posterior_sampler: Callable, prior, simulator: Callable, box: Box, num_simulations: int,
                  num_draws: int, *, log_prob: Callable | None = None, oversample: int = 4, alpha: float = 0.05,
                  seed: Seed = 0, n_jobs: int = 1, progress: bool | None = None) -> TruncatedSBCResult:
    """SBC (and HPD coverage) of q restricted to ``box``, on test data from the prior truncated to it.

    Args:
        posterior_sampler: ``f(x (N, d_x), L, seed=int) -> (L, N, D)``: the AMORTISED estimator
            of the last round (e.g. ``lambda x, n, seed: estimator.sample(n, x, generator=...)``).
        prior, simulator: as for ``run_sbc``. box: from ``truncation_box`` of draws at x0.
        num_simulations: N test simulations (before leaking ones are dropped). num_draws: L.
        log_prob: optional batched log q(θ|x) (``make_test_set``) for HPD coverage.
        oversample: draws made per kept draw. alpha: family-wise level (SBC and coverage each get
            α/2 when both run). seed: one stream for everything.
        n_jobs, progress: simulation workers and bar.

    Returns:
        ``TruncatedSBCResult``.

    Example:
        >>> from sbi_lite.priors import BoxUniform
        >>> prior = BoxUniform(-10 * torch.ones(1), 10 * torch.ones(1))
        >>> sim = lambda t, rng: t + rng.normal(size=t.shape)
        >>> def post(x, n, seed):  # exact far from the bounds: N(x, 1)
        ...     return x + torch.randn(n, *x.shape, generator=torch.Generator().manual_seed(seed))
        >>> truncated_sbc(post, prior, sim, Box(torch.tensor([-4.0]), torch.tensor([4.0])), 200, 50).calibrated
        True
    """
    alpha = check_alpha(alpha)
    test_ss, rank_ss = seed_sequence(seed).spawn(2)
    tests = make_test_set(posterior_sampler, prior, simulator, num_simulations, num_draws, box=box,
                          log_prob=log_prob, oversample=oversample, seed=test_ss, n_jobs=n_jobs, progress=progress)
    if len(tests.x) < 10:
        raise ValueError(f"only {len(tests.x)} of {num_simulations} test x keep {num_draws} draws in the box "
                         f"({tests.num_leaking} leak): widen the box or raise oversample")
    sbc_ss, cov_ss = rank_ss.spawn(2)
    # Bonferroni over the two families keeps the chance of a false "not calibrated" at α
    level = alpha if tests.log_prob_true is None else alpha / 2
    result = sbc(tests.theta, tests.draws, alpha=level, seed=sbc_ss)
    coverage = None if tests.log_prob_true is None else expected_coverage(
        tests.log_prob_true, tests.log_prob_draws, alpha=level, seed=cov_ss)
    return TruncatedSBCResult(sbc=SBCResult(**{**result.__dict__, "theta": tests.theta, "x": tests.x}),
                              coverage=coverage, box=box, num_tested=len(tests.x), num_leaking=tests.num_leaking,
                              num_failed=tests.num_failed)
