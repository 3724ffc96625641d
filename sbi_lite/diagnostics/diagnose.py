"""``diagnose``: one call, one set of test simulations, every check, one verdict per parameter.

The test set (``testset.py``): N pairs θ̃ ~ prior (or the prior truncated to a ``region`` for a
sequential posterior, ``sequential.py``), x ~ p(x|θ̃), L posterior draws per x. On it run SBC
(per parameter), expected HPD coverage (when a ``log_prob`` is given) and TARP (joint); at x0, a
posterior predictive check (when a posterior is given) and the typicality of x0 among the test x.

Verdict rule per parameter (α family-wise over the calibration checks):
1. The raw p-values of SBC (one per parameter), HPD coverage and TARP are adjusted TOGETHER with
   Holm, so the chance that a calibrated posterior is called anything else is ≤ α.
2. A parameter whose SBC p is rejected gets SBC's reading of its rank shape: "biased",
   "over-confident" or "under-confident" (``sbc.py``).
3. If SBC rejects no parameter but a joint check does, every parameter gets the verdict of the
   rejected joint check with the smallest p (a joint check cannot say which parameter is at
   fault; HPD coverage reads a bias as "over-confident", ``coverage.py``).
4. Otherwise "calibrated".
PPC and typicality are about x0 and the model, not calibration: they are reported beside.

How many test simulations. Each check alone (D = 2, L = 100, α = 0.05; ``POWER`` in ``sbc.py``,
``coverage.py``, ``tarp.py``): a ½-sd bias needs N ≈ 50 (SBC; coverage N ≈ 350, TARP N ≈ 1400);
over-confidence sd × 0.7 needs N ≈ 40 (coverage; SBC 80, TARP 175); under-confidence sd × 1.5
needs N ≈ 30 (coverage; SBC 90, TARP 90). ``diagnose`` itself, with the Holm step over the 4
p-values, on the Gaussian-linear model of ``tests/test_diagnose.py`` (100 repetitions each):
rejects a ½-sd bias in 84 % at N = 50 and 99 % at N = 100; sd × 0.7 in 87 % at N = 40 and 99 %
at N = 80; sd × 1.5 in 89 % at N = 30. A calibrated posterior is called miscalibrated in 6 % of
300 repetitions (N = 100, L = 50; 6 % of 200 without ``log_prob``). So N = 100 suffices for
these errors in D = 2; the default N = 300 leaves room for more parameters (Holm divides α
among them) and smaller errors; without a ``log_prob`` (no coverage) the dispersion errors need
SBC's N ≈ 80–90.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from sbi_lite.diagnostics._arrays import check_alpha
from sbi_lite.diagnostics.coverage import CoverageResult, expected_coverage
from sbi_lite.diagnostics.predictive import PredictiveResult, posterior_predictive_check
from sbi_lite.diagnostics.sbc import SBCResult, holm, sbc, verdicts
from sbi_lite.diagnostics.tarp import TARPResult, tarp
from sbi_lite.diagnostics.testset import Box, make_test_set
from sbi_lite.diagnostics.typicality import TypicalityResult, check_observation
from sbi_lite.seeding import Seed, seed_sequence

__all__ = ["DiagnosticReport", "diagnose"]


@dataclass(frozen=True)
class DiagnosticReport:
    """Outcome of ``diagnose``.

    Attributes:
        verdicts: parameter name -> "calibrated" | "biased" | "over-confident" | "under-confident".
        table: one row per (parameter or "all" or statistic, check): p_value, p_adjusted, verdict.
        sbc, coverage, tarp: the checks' results (coverage None without ``log_prob``).
        predictive, typicality: the x0 checks, or None. notes: plain-words remarks (skipped
        checks, failed or leaking simulations). num_tested: test pairs used. alpha: level.
    """

    verdicts: dict[str, str]
    table: pd.DataFrame
    sbc: SBCResult
    coverage: CoverageResult | None
    tarp: TARPResult
    predictive: PredictiveResult | None
    typicality: TypicalityResult | None
    notes: list[str]
    num_tested: int
    alpha: float
    region: Box | None = field(default=None, repr=False)

    @property
    def calibrated(self) -> bool:
        return all(v == "calibrated" for v in self.verdicts.values())

    def to_markdown(self) -> str:
        """Verdicts, the table and the notes as Markdown."""
        lines = [f"**Diagnosis** ({self.num_tested} test simulations"
                 f"{', truncated prior' if self.region is not None else ''}, α = {self.alpha:g})", ""]
        lines += [f"- {name}: **{verdict}**" for name, verdict in self.verdicts.items()]
        columns = ["target", "check", "p_value", "p_adjusted", "verdict"]
        lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in self.table.itertuples(index=False):
            cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        lines += [""] + [f"Note: {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def __repr__(self) -> str:
        return self.to_markdown()

    def figure(self, path=None):
        """SBC ECDF per parameter, HPD coverage and TARP side by side; saved as PNG at ``path``."""
        from sbi_lite.diagnostics.ecdf import ecdf_band
        from sbi_lite.diagnostics.panels import curve_panel, finish, pyplot, sbc_panel

        d = len(self.verdicts)
        curves = [c for c in (self.coverage, self.tarp) if c is not None]
        fig, axes = pyplot().subplots(1, d + len(curves), figsize=(3.2 * (d + len(curves)), 3.0), squeeze=False)
        band = ecdf_band(len(self.sbc.ranks), self.sbc.num_draws + 1, alpha=self.alpha)
        for c in range(d):
            sbc_panel(axes[0, c], self.sbc, c, band)
        axes[0, 0].set_ylabel("ECDF − uniform")
        for ax, result in zip(axes[0, d:], curves):
            is_tarp = result is self.tarp
            curve_panel(ax, result.levels, result.ecp if is_tarp else result.coverage, result.lower, result.upper,
                        title=f"{'TARP' if is_tarp else 'HPD coverage'}: {result.verdict} (p={result.p_value:.3g})",
                        ylabel="expected coverage" if is_tarp else "empirical coverage",
                        band_label="bootstrap band" if is_tarp else "simultaneous band")
        return finish(fig, path)


def _combine(sbc_result: SBCResult, joint: dict, alpha: float) -> tuple[dict, np.ndarray]:
    """The verdict rule of the module docstring; returns verdicts and Holm-adjusted p (SBC first)."""
    d = len(sbc_result.names)
    adjusted = holm(np.concatenate([sbc_result.p_gamma, [r.p_value for r in joint.values()]]))
    per_parameter = verdicts(adjusted[:d], sbc_result.z_mean, sbc_result.z_spread, alpha)
    rejected = [(p, r.verdict) for p, r in zip(adjusted[d:], joint.values()) if p < alpha]
    if all(v == "calibrated" for v in per_parameter) and rejected:
        per_parameter = [min(rejected)[1]] * d
    return dict(zip(sbc_result.names, per_parameter)), adjusted


def diagnose(posterior_sampler: Callable, prior, simulator: Callable, *, num_simulations: int = 300,
             num_draws: int = 100, log_prob: Callable | None = None, x0=None, posterior=None,
             region: Box | None = None, names: Sequence[str] | None = None, alpha: float = 0.05,
             num_predictive: int = 1000, seed: Seed = 0, n_jobs: int = 1,
             progress: bool | None = None) -> DiagnosticReport:
    """Run SBC, HPD coverage and TARP on one test set, plus PPC and typicality at x0.

    Args:
        posterior_sampler: ``f(x (N, d_x), L, seed=int) -> (L, N, D)`` (batched, samples first).
        prior, simulator: as for ``run_sbc``. num_simulations: N (module docstring for how many).
        num_draws: L draws per test x.
        log_prob: optional ``g(theta (L, N, D) or (N, D), x (N, d_x)) -> (L, N) or (N,)``: log q(θ|x)
            up to a constant per x; HPD coverage is skipped (with a note) without it.
        x0: the observation (d_x,): its typicality among the test x is checked.
        posterior: with x0, anything with ``sample(n, seed=)`` at x0: a predictive check is run.
        region: a ``Box`` (``truncation_box``) for a sequential posterior: θ̃ from the prior
            truncated to it, draws restricted to it (``sequential.py``).
        names: D parameter names. alpha: family-wise level of the verdicts.
        num_predictive: simulations of the predictive check. seed: one stream for everything.
        n_jobs, progress: simulation workers and bars.

    Returns:
        ``DiagnosticReport``: print it, ``.table``, ``.verdicts``, ``.figure(path)``.

    Example:
        >>> import torch
        >>> prior = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
        >>> sim = lambda t, rng: t + rng.normal(size=t.shape)
        >>> def exact(x, n, seed):  # the analytic posterior N(x/2, I/2)
        ...     return x / 2 + 0.5**0.5 * torch.randn(n, *x.shape, generator=torch.Generator().manual_seed(seed))
        >>> diagnose(exact, prior, sim, num_simulations=200, num_draws=50).verdicts
        {'θ1': 'calibrated', 'θ2': 'calibrated'}
    """
    from sbi_lite.priors import as_prior

    alpha = check_alpha(alpha)
    if posterior is not None and x0 is None:
        raise ValueError("posterior was given without x0: the predictive check needs the observation")
    prior = as_prior(prior)
    test_ss, sbc_ss, cov_ss, tarp_ss, ppc_ss, typ_ss = seed_sequence(seed).spawn(6)
    tests = make_test_set(posterior_sampler, prior, simulator, num_simulations, num_draws, box=region,
                          log_prob=log_prob, seed=test_ss, n_jobs=n_jobs, progress=progress)
    if len(tests.x) < 10:
        raise ValueError(f"only {len(tests.x)} of {num_simulations} test simulations are usable "
                         f"({tests.num_failed} failed, {tests.num_leaking} leak out of the region)")
    notes = []
    if tests.num_failed:
        notes.append(f"{tests.num_failed} of {num_simulations} test simulations failed and were left out.")
    if tests.num_leaking:
        notes.append(f"{tests.num_leaking} test x were dropped: most of their posterior lies outside the region.")
    sbc_result = sbc(tests.theta, tests.draws, names=names, alpha=alpha, seed=sbc_ss)
    sbc_result = SBCResult(**{**sbc_result.__dict__, "theta": tests.theta, "x": tests.x})
    coverage = None
    if log_prob is None:
        notes.append("HPD coverage skipped: pass log_prob (log q(θ|x) up to a constant) to run it.")
    else:
        coverage = expected_coverage(tests.log_prob_true, tests.log_prob_draws, alpha=alpha, seed=cov_ss)
    # in the prior's units when testing against the whole prior; a truncated test set scales itself
    loc, scale = (None, None) if region is not None else (getattr(prior, "mean", None), getattr(prior, "stddev", None))
    tarp_result = tarp(tests.theta, tests.draws, loc=loc, scale=scale, alpha=alpha, seed=tarp_ss)
    joint = {"HPD coverage": coverage, "TARP": tarp_result} if coverage is not None else {"TARP": tarp_result}
    per_parameter, adjusted = _combine(sbc_result, joint, alpha)

    d = len(sbc_result.names)
    rows = [(n, "SBC", p, a, v) for n, p, a, v in zip(sbc_result.names, sbc_result.p_gamma, adjusted, per_parameter.values())]
    rows += [("all", check, r.p_value, a, r.verdict if a < alpha else "calibrated")
             for (check, r), a in zip(joint.items(), adjusted[d:])]
    predictive = typicality = None
    if x0 is not None and (len(tests.x) // 2 + 1) * alpha <= 1:
        notes.append(f"typicality of x0 skipped: {len(tests.x)} test simulations cannot give p < α = {alpha:g}.")
    elif x0 is not None:
        typicality = check_observation(tests.x, x0, alpha=alpha, num_calibration=len(tests.x) // 2, seed=typ_ss)
        rows.append(("x0", "typicality", typicality.p_value, typicality.p_value,
                     "typical" if typicality.typical else "atypical"))
        if typicality.warning:
            notes.append(typicality.warning)
    if posterior is not None:
        predictive = posterior_predictive_check(posterior, simulator, x0, num_predictive, alpha=alpha, seed=ppc_ss,
                                                n_jobs=n_jobs, progress=progress)
        rows += [(f"x0: {n}", "PPC", p, a, "misfit" if a < alpha else "fits")
                 for n, p, a in zip(predictive.names, predictive.p_values, predictive.p_adjusted)]
        if predictive.flagged:
            notes.append(f"The posterior predictive does not reproduce x0 in {', '.join(predictive.flagged)}.")
    table = pd.DataFrame(rows, columns=["target", "check", "p_value", "p_adjusted", "verdict"])
    return DiagnosticReport(verdicts=per_parameter, table=table, sbc=sbc_result, coverage=coverage,
                            tarp=tarp_result, predictive=predictive, typicality=typicality, notes=notes,
                            num_tested=len(tests.x), alpha=alpha, region=region)
