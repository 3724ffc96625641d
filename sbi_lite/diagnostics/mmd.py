"""Unbiased squared maximum mean discrepancy with a Gaussian kernel (the paper's NG metric).

MMD²_u = mean_{i≠j} k(a_i, a_j) + mean_{i≠j} k(b_i, b_j) − 2 mean_{i,j} k(a_i, b_j), with
k(u, v) = exp(−||u − v||² / (2ℓ²)) and ℓ the median of all pairwise distances of the pooled
sample (pairs within a, within b and across), as in the paper's code. Unbiased: its mean is 0
when a and b come from one distribution, so single values can be slightly negative.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist, pdist

from sbi_lite.diagnostics._arrays import as_array

__all__ = ["mmd_length_scale", "mmd_squared"]


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = as_array("a", a, 2), as_array("b", b, 2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same dimension; got shapes {a.shape} and {b.shape}")
    for name, arr in (("a", a), ("b", b)):
        if len(arr) < 2:
            raise ValueError(f"{name} needs at least 2 samples for the unbiased estimate; got shape {arr.shape}")
    return a, b


def mmd_length_scale(a, b) -> float:
    """Median of all pairwise distances among the pooled samples a (n, d) and b (m, d).

    Example:
        >>> mmd_length_scale([[0.0], [1.0]], [[3.0], [4.0]])  # distances 1, 1, 3, 4, 2, 3
        2.5
    """
    a, b = _pair(a, b)
    return float(np.median(pdist(np.concatenate([a, b]))))


def mmd_squared(a, b, *, length_scale: float | None = None) -> float:
    """Unbiased MMD² between samples a (n, d) and b (m, d), Gaussian kernel.

    Args:
        a, b: (n, d) and (m, d) numpy arrays or tensors, n, m ≥ 2, finite.
        length_scale: ℓ > 0 of k(u, v) = exp(−||u − v||²/(2ℓ²)); None: ``mmd_length_scale(a, b)``.

    Returns:
        The unbiased estimate of MMD², a float (≈ 0 for equal distributions, may be < 0).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> same = mmd_squared(rng.normal(size=(500, 2)), rng.normal(size=(500, 2)))
        >>> shifted = mmd_squared(rng.normal(size=(500, 2)), rng.normal(1.0, size=(500, 2)))
        >>> abs(same) < 0.01 < shifted
        True
    """
    a, b = _pair(a, b)
    if length_scale is None:
        length_scale = mmd_length_scale(a, b)
    elif not (isinstance(length_scale, (int, float)) and np.isfinite(length_scale) and length_scale > 0):
        raise ValueError(f"length_scale must be a positive finite number or None, got length_scale={length_scale!r}")
    if length_scale == 0:  # over half the pooled pairs coincide: no scale to measure with
        raise ValueError("the median pairwise distance of the pooled samples is 0; pass length_scale explicitly")
    c = -0.5 / length_scale**2
    n, m = len(a), len(b)
    # the within-sample sums leave out the diagonal (k(u, u) = 1): that is what makes it unbiased
    k_aa = (np.exp(c * cdist(a, a, "sqeuclidean")).sum() - n) / (n * (n - 1))
    k_bb = (np.exp(c * cdist(b, b, "sqeuclidean")).sum() - m) / (m * (m - 1))
    k_ab = np.exp(c * cdist(a, b, "sqeuclidean")).mean()
    return float(k_aa + k_bb - 2 * k_ab)
