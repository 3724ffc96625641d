"""Figures people would rather look at than read (matplotlib imported lazily)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import Tensor

__all__ = ["pairplot", "sbc_ecdf", "coverage_curve", "tarp_curve"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


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
    from sbi_lite.diagnostics.ecdf import ecdf_band, rank_ecdf

    plt = _pyplot()
    cols = result.ranks.shape[1]
    band = ecdf_band(len(result.ranks), result.num_draws + 1, alpha=result.alpha)
    z, f = rank_ecdf(result.ranks, result.num_draws + 1)
    fig, axes = plt.subplots(1, cols, figsize=(3 * cols, 2.6), squeeze=False, sharey=True)
    for c, ax in enumerate(axes[0]):
        ax.fill_between(band.z, band.lower - band.z, band.upper - band.z, color="0.85", step="mid",
                        label=f"{1 - result.alpha:.0%} simultaneous")
        ax.step(z, f[:, c] - z, where="mid", color="C0")
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set_title(f"{result.names[c]}: {result.verdict[c]}", fontsize=9)
        ax.set_xlabel("fractional rank")
    axes[0, 0].set_ylabel("ECDF − uniform")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    return _finish(fig, path)


def _curve(levels, values, lower, upper, *, title, ylabel, band_label, path):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.4, 3.2))
    ax.fill_between(levels, lower, upper, color="0.85", label=band_label)
    ax.plot([0, 1], [0, 1], color="0.4", lw=0.8, ls="--")
    ax.plot(levels, values, color="C0")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="credibility level", ylabel=ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
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
