"""Figures people would rather look at than read (matplotlib imported lazily)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import Tensor

from sbi_lite.diagnostics.panels import curve_panel, finish as _finish, predictive_panel, pyplot as _pyplot, sbc_panel

__all__ = ["pairplot", "history", "sbc_ecdf", "coverage_curve", "tarp_curve", "predictive_check"]


def pairplot(samples: Tensor | np.ndarray, *, labels: Sequence[str] | None = None, truth=None,
             limits: Sequence[tuple[float, float]] | None = None, bins: int = 40, path: str | None = None):
    """Marginal histograms on the diagonal and 2-D histograms below it.

    Args:
        samples: (n, d) posterior draws.
        labels: d names. truth: (d,) values marked in red. limits: d (low, high) axis ranges.
        path: save the figure there (PNG) when given.

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    s = np.asarray(samples)
    d = s.shape[1]
    labels = list(labels) if labels is not None else [f"θ{i + 1}" for i in range(d)]
    fig, axes = plt.subplots(d, d, figsize=(2.2 * d, 2.2 * d), squeeze=False)
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            rng_i = limits[i] if limits is not None else None
            rng_j = limits[j] if limits is not None else None
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                ax.hist(s[:, i], bins=bins, range=rng_i, color="C0")
                if truth is not None:
                    ax.axvline(float(truth[i]), color="red")
                ax.set_yticks([])
            else:
                ax.hist2d(s[:, j], s[:, i], bins=bins, range=None if limits is None else [rng_j, rng_i], cmap="Blues")
                if truth is not None:
                    ax.plot(float(truth[j]), float(truth[i]), "r+", ms=10)
            if i == d - 1:
                ax.set_xlabel(labels[j])
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i])
    return _finish(fig, path)


def sbc_ecdf(result, *, path: str | None = None):
    """SBC rank ECDF minus the uniform CDF, one panel per column, with the simultaneous band.

    Args:
        result: an ``SBCResult`` (``sbi_lite.diagnostics.sbc``). path: save as PNG when given.

    Returns:
        The matplotlib Figure. A curve leaving the grey band anywhere rejects uniformity at the
        band's level (before the multiple-column correction): above zero then below (ranks at
        both ends) means over-confidence, below then above under-confidence, one sign throughout bias.

    Example:
        >>> from sbi_lite.diagnostics import sbc
        >>> rng = np.random.default_rng(0)
        >>> fig = sbc_ecdf(sbc(rng.normal(size=(50, 2)), rng.normal(size=(50, 20, 2))))
        >>> len(fig.axes)
        2
    """
    from sbi_lite.diagnostics.ecdf import ecdf_band

    plt = _pyplot()
    cols = result.ranks.shape[1]
    band = ecdf_band(len(result.ranks), result.num_draws + 1, alpha=result.alpha)
    fig, axes = plt.subplots(1, cols, figsize=(3 * cols, 2.6), squeeze=False, sharey=True)
    for c, ax in enumerate(axes[0]):
        sbc_panel(ax, result, c, band)
    axes[0, 0].set_ylabel("ECDF − uniform")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    return _finish(fig, path)


def _curve(levels, values, lower, upper, *, title, ylabel, band_label, path):
    fig, ax = _pyplot().subplots(figsize=(3.4, 3.2))
    curve_panel(ax, levels, values, lower, upper, title=title, ylabel=ylabel, band_label=band_label)
    return _finish(fig, path)


def coverage_curve(result, *, path: str | None = None):
    """Empirical HPD coverage against credibility with the simultaneous band under calibration.

    Args:
        result: a ``CoverageResult``. path: save as PNG when given.

    Returns:
        The matplotlib Figure. Below the diagonal: over-confident (or biased); above: under-confident.

    Example:
        >>> from sbi_lite.diagnostics import expected_coverage
        >>> rng = np.random.default_rng(0)
        >>> result = expected_coverage(-rng.exponential(size=50), -rng.exponential(size=(50, 20)))
        >>> coverage_curve(result).axes[0].get_xlabel()
        'credibility level'
    """
    return _curve(result.levels, result.coverage, result.lower, result.upper,
                  title=f"HPD coverage: {result.verdict} (p={result.p_value:.3g})", ylabel="empirical coverage",
                  band_label=f"{1 - result.alpha:.0%} simultaneous (calibrated)", path=path)


def tarp_curve(result, *, path: str | None = None):
    """TARP expected-coverage-probability curve with its simultaneous bootstrap band.

    Args:
        result: a ``TARPResult``. path: save as PNG when given.

    Returns:
        The matplotlib Figure. The band is around the estimated curve: the diagonal leaving it is
        evidence of miscalibration.

    Example:
        >>> from sbi_lite.diagnostics import tarp
        >>> rng = np.random.default_rng(0)
        >>> tarp_curve(tarp(rng.normal(size=(50, 2)), rng.normal(size=(50, 20, 2)))).axes[0].get_ylabel()
        'expected coverage'
    """
    return _curve(result.levels, result.ecp, result.lower, result.upper,
                  title=f"TARP: {result.verdict} (p={result.p_value:.3g})", ylabel="expected coverage",
                  band_label=f"{1 - result.alpha:.0%} bootstrap band", path=path)


def predictive_check(result, *, columns: int = 4, path: str | None = None):
    """Posterior predictive histogram of every statistic with x0 marked (red), p-value and z in the title.

    Args:
        result: a ``PredictiveResult`` (``sbi_lite.diagnostics.predictive``). columns: panels per row.
        path: save as PNG when given.

    Returns:
        The matplotlib Figure; a red title marks a statistic flagged after the Holm correction.

    Example:
        >>> from sbi_lite.diagnostics.predictive import PredictiveResult, predictive_p_values
        >>> pred = np.random.default_rng(0).normal(size=(500, 3))
        >>> obs = np.array([0.0, 0.5, 4.0])
        >>> p = predictive_p_values(obs, pred)
        >>> res = PredictiveResult(["a", "b", "c"], obs, pred, p, p, obs, 0.0, 0.05, None, None)
        >>> [ax.get_xlabel() for ax in predictive_check(res).axes if ax.get_visible()]
        ['a', 'b', 'c']
    """
    plt = _pyplot()
    k = len(result.names)
    cols = min(k, int(columns))
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, 2.4 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < k:
            predictive_panel(ax, result, i)
        else:
            ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    return _finish(fig, path)


def history(table, *, path: str | None = None):
    """The rounds at a glance: validation loss, rejection acceptance, how far each round moved the
    posterior, and seconds per phase (stacked), one panel each, against the round.

    Args:
        table: ``posterior.history``.
        path: save the figure there (PNG) when given.

    Returns:
        The matplotlib Figure.

    Example:
        >>> import pandas as pd
        >>> h = pd.DataFrame({"round": [1, 2], "best_validation_loss": [3.1, 2.0], "acceptance_rate": [np.nan, 0.6],
        ...                   "posterior_change": [np.nan, 0.3], "seconds_propose": [0.0, 1.0],
        ...                   "seconds_simulate": [2.0, 2.0], "seconds_train": [5.0, 3.0]})
        >>> len(history(h).axes)
        4
    """
    plt = _pyplot()
    rounds = table["round"].to_numpy()
    fig, axes = plt.subplots(1, 4, figsize=(14, 3))
    # the proposing panel: rejection acceptance (SNPE-C), else the MCMC chains' health (SNL, SRE)
    mcmc = "mcmc_rhat" in table and table["acceptance_rate"].isna().all() and table["mcmc_rhat"].notna().any()
    for ax, column, title in ((axes[0], "best_validation_loss", "best validation loss"),
                              (axes[1], *(("mcmc_rhat", "MCMC nested R-hat") if mcmc
                                          else ("acceptance_rate", "rejection acceptance"))),
                              (axes[2], "posterior_change", "posterior change (sd)")):
        ax.plot(rounds, table[column].to_numpy(dtype=float), "o-")
        ax.set_title(title)
    if mcmc:
        from sbi_lite.samplers.health import THRESHOLD

        axes[1].axhline(THRESHOLD, color="k", linestyle="--", linewidth=1, label="warning level")
        axes[1].legend(fontsize="small")
    bottom = np.zeros(len(rounds))
    for phase in ("propose", "simulate", "train"):
        seconds = table[f"seconds_{phase}"].to_numpy(dtype=float)
        axes[3].bar(rounds, seconds, bottom=bottom, label=phase)
        bottom += seconds
    axes[3].set_title("seconds per phase")
    axes[3].legend(fontsize="small")
    for ax in axes:
        ax.set_xlabel("round")
    return _finish(fig, path)
