"""Axis-level drawings of the diagnostics' results (matplotlib imported lazily).

They live here, below ``sbi_lite.plot`` in the layering, so that a diagnostic's own report can
draw itself (``DiagnosticReport.figure``) and ``sbi_lite.plot`` can compose the same panels.
"""

from __future__ import annotations

__all__ = ["pyplot", "finish", "sbc_panel", "curve_panel", "predictive_panel"]


def pyplot():
    """``matplotlib.pyplot`` with a non-interactive backend unless one was chosen already.

    A backend counts as chosen when pyplot is imported, ``MPLBACKEND`` is set (Jupyter's kernel
    sets it to the inline backend) or ``matplotlib.use`` was called: figures then show inline in a
    notebook. (``matplotlib.use("Agg", force=False)`` switched away from any of them.)
    """
    import os
    import sys

    import matplotlib

    chosen = getattr(matplotlib.rcParams, "_get_backend_or_none", lambda: None)()
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND") and chosen is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish(fig, path):
    """Tight layout, saved as PNG when ``path`` is given; returns the figure."""
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def sbc_panel(ax, result, column: int, band) -> None:
    """SBC rank ECDF minus the uniform CDF of one column, inside the simultaneous ``EcdfBand``."""
    from sbi_lite.diagnostics.ecdf import rank_ecdf

    z, f = rank_ecdf(result.ranks[:, column], result.num_draws + 1)
    ax.fill_between(band.z, band.lower - band.z, band.upper - band.z, color="0.85", step="mid",
                    label=f"{1 - result.alpha:.0%} simultaneous")
    ax.step(z, f - z, where="mid", color="C0")
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_title(f"{result.names[column]}: {result.verdict[column]}", fontsize=9)
    ax.set_xlabel("fractional rank")


def curve_panel(ax, levels, values, lower, upper, *, title: str, ylabel: str, band_label: str) -> None:
    """A coverage-type curve against credibility, its band and the diagonal."""
    ax.fill_between(levels, lower, upper, color="0.85", label=band_label)
    ax.plot([0, 1], [0, 1], color="0.4", lw=0.8, ls="--")
    ax.plot(levels, values, color="C0")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="credibility level", ylabel=ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")


def predictive_panel(ax, result, k: int, bins: int = 40) -> None:
    """Predictive histogram of statistic k with x0's value as a red line."""
    values = result.predicted[:, k]
    observed = float(result.observed[k])
    lo, hi = min(values.min(), observed), max(values.max(), observed)
    ax.hist(values, bins=bins, range=(lo, hi) if hi > lo else None, color="C0", alpha=0.8)
    ax.axvline(observed, color="red", lw=1.5, label="x0")
    ax.set_yticks([])
    ax.set_xlabel(result.names[k])
    ax.set_title(f"p={result.p_values[k]:.3g}, z={result.z[k]:+.1f}", fontsize=9,
                 color="red" if result.p_adjusted[k] < result.alpha else "black")
