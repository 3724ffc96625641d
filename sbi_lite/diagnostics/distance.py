"""Median distance of simulations to the observation: the paper's per-round data-space metric."""

from __future__ import annotations

import numpy as np

from sbi_lite.diagnostics._arrays import as_array

__all__ = ["median_distance"]


def median_distance(x, x0) -> float:
    """Median over rows of ||x_i − x0||₂.

    Give x and x0 in the task's statistic space as its simulator outputs them (normalised for
    Lotka–Volterra, whitened for M/G/1, raw for the Nonlinear Gaussian), so that distances match
    the paper's.

    Args:
        x: (n, d_x) simulations (a round's), finite: drop failed runs first.
        x0: (d_x,) the observation.

    Returns:
        The median Euclidean distance, a float.

    Example:
        >>> median_distance([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]], [0.0, 0.0])  # distances 5, 1, 10
        5.0
    """
    x = as_array("x", x, 2)
    x0 = as_array("x0", x0, 1)
    if x.shape[1] != len(x0):
        raise ValueError(f"x0 has {len(x0)} entries but x has {x.shape[1]} columns (shape {x.shape})")
    return float(np.median(np.linalg.norm(x - x0, axis=1)))
