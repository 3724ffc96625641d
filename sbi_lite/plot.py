"""Figures people would rather look at than read (matplotlib imported lazily)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import Tensor

__all__ = ["pairplot"]


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
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
