"""Have the rounds converged? How far the posterior at x0 moved between successive rounds.

``posterior_change`` whitens both draw sets with the CURRENT draws' mean and covariance (so the
answer is in units of the current posterior's sd, along every direction) and returns the largest
one-dimensional Wasserstein-1 distance between the two sets over the d whitened axes and
``num_projections`` random unit directions (a max-sliced W1). Read it as: "along the direction
where it moved most, the posterior moved by this many posterior sd (measured along that
direction)" — a location shift by δ in Mahalanobis distance gives ≈ δ (so a move of ½ marginal sd
AGAINST a 0.95 correlation gives 1.6: it left where the posterior was), a change of width by a
factor s in one direction gives ≈ 0.8·|s − 1|/s (in the current, s-times wider, sd).

Two independent draw sets from the SAME posterior do not give 0: the null level falls like
1/√n. Measured with n draws per set (Gaussian posteriors, 500 repetitions, 64 projections):

======  ======================  ======================  ======================
n       d = 2: median/99 %/max  d = 5: median/99 %/max  d = 10: median/99 %/max
======  ======================  ======================  ======================
1000    0.072 / 0.135 / 0.152   0.098 / 0.159 / 0.190   0.110 / 0.170 / 0.196
2000    0.052 / 0.101 / 0.138   0.068 / 0.115 / 0.139   0.077 / 0.116 / 0.129
======  ======================  ======================  ======================

``DEFAULT_THRESHOLD = 0.15`` is for ``DEFAULT_DRAWS = 2000`` draws per round: above every one of
the 500 null changes for d ≤ 10 (so "still moving" is called for a posterior that stopped in
well under 1 % of rounds), while a move of 0.3 sd in one coordinate gives 0.30 ± 0.03 (smallest of
200: 0.21) and a width change by 1.3 gives 0.185 ± 0.015 (smallest 0.14): both are seen. With n
draws use about ``0.15·√(2000/n)`` (0.21 at n = 1000), or measure with ``null_change(n, d)``.
A converged SNPE still moves a little from retraining noise; requiring ``patience`` successive
small changes keeps one lucky round from stopping the loop.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sbi_lite.diagnostics._arrays import as_array
from sbi_lite.seeding import Seed, seed_sequence

__all__ = ["DEFAULT_THRESHOLD", "DEFAULT_DRAWS", "posterior_change", "null_change", "converged"]

DEFAULT_THRESHOLD = 0.15
DEFAULT_DRAWS = 2000


def _quantiles(sorted_values: np.ndarray, size: int) -> np.ndarray:
    """Columns of sorted (n, P) values at the ``size`` midpoint levels (k + ½)/size, interpolated."""
    n = len(sorted_values)
    if n == size:
        return sorted_values
    position = (np.arange(size) + 0.5) / size * n - 0.5
    low = np.clip(np.floor(position).astype(np.int64), 0, n - 1)
    high = np.minimum(low + 1, n - 1)
    frac = np.clip(position - low, 0.0, 1.0)[:, None]
    return sorted_values[low] * (1 - frac) + sorted_values[high] * frac


def _sliced_w1(a: np.ndarray, b: np.ndarray, directions: np.ndarray) -> float:
    """max over directions (P, d) of W1 between the projections (the mean gap between matched quantiles)."""
    size = min(len(a), len(b))
    qa = _quantiles(np.sort(a @ directions.T, axis=0), size)  # (size, P)
    qb = _quantiles(np.sort(b @ directions.T, axis=0), size)
    return float(np.abs(qa - qb).mean(0).max())


def posterior_change(previous_draws, current_draws, *, num_projections: int = 64, seed: Seed = 0) -> float:
    """How far the posterior moved: max-sliced W1 in units of the current posterior's sd.

    Args:
        previous_draws: (n, d) draws from the previous round's posterior at x0.
        current_draws: (m, d) draws from the current one (m need not equal n).
        num_projections: random directions besides the d whitened axes.
        seed: stream of the random directions.

    Returns:
        The change (≥ 0); compare with ``DEFAULT_THRESHOLD`` (module docstring for its null).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2))
        >>> posterior_change(a, b) < DEFAULT_THRESHOLD < posterior_change(a, b + [0.3, 0.0])
        True
    """
    prev = as_array("previous_draws", previous_draws, 2)
    cur = as_array("current_draws", current_draws, 2)
    if prev.shape[1] != cur.shape[1]:
        raise ValueError(f"previous_draws has d = {prev.shape[1]} but current_draws has d = {cur.shape[1]}")
    if min(len(prev), len(cur)) < 10:
        raise ValueError(f"need at least 10 draws in each set; got {len(prev)} and {len(cur)}")
    if int(num_projections) < 0:
        raise ValueError(f"num_projections must be >= 0, got {num_projections}")
    d = cur.shape[1]
    mean = cur.mean(0)
    values, vectors = np.linalg.eigh(np.atleast_2d(np.cov(cur, rowvar=False)))
    if values.min() <= 1e-12 * max(values.max(), 1e-300):
        raise ValueError("current_draws have (nearly) no spread in some direction: cannot measure change in sd units")
    whiten = (vectors / np.sqrt(values)) @ vectors.T  # symmetric (ZCA): whitened axes stay near the coordinates
    random = np.random.default_rng(seed_sequence(seed)).normal(size=(int(num_projections), d))
    directions = np.concatenate([np.eye(d), random / np.linalg.norm(random, axis=1, keepdims=True)])
    return _sliced_w1((prev - mean) @ whiten, (cur - mean) @ whiten, directions)


def null_change(n: int, d: int, *, repetitions: int = 200, quantile: float = 0.99, seed: Seed = 0) -> float:
    """The ``quantile`` of ``posterior_change`` between two independent sets of n Gaussian draws in d dimensions.

    Example:
        >>> 0.05 < null_change(DEFAULT_DRAWS, 2, repetitions=50) < DEFAULT_THRESHOLD
        True
    """
    if int(n) < 10 or int(d) < 1 or int(repetitions) < 1:
        raise ValueError(f"need n >= 10, d >= 1, repetitions >= 1; got n={n}, d={d}, repetitions={repetitions}")
    rng = np.random.default_rng(seed_sequence(seed))
    changes = [posterior_change(rng.normal(size=(n, d)), rng.normal(size=(n, d)), seed=rng) for _ in range(repetitions)]
    return float(np.quantile(changes, quantile))


def converged(changes: Sequence[float], *, threshold: float = DEFAULT_THRESHOLD, patience: int = 2) -> bool:
    """True when the last ``patience`` round-to-round changes are all below ``threshold``.

    Args:
        changes: ``posterior_change`` of each round against the one before, in round order.
        threshold: largest change still counted as "not moving" (default: module docstring).
        patience: how many successive small changes are required.

    Example:
        >>> converged([0.9, 0.4, 0.08, 0.06]), converged([0.9, 0.08, 0.3]), converged([0.05])
        (True, False, False)
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    if isinstance(patience, bool) or int(patience) != patience or patience < 1:
        raise ValueError(f"patience must be an integer >= 1, got {patience}")
    values = np.asarray(changes, dtype=np.float64)
    if values.ndim != 1 or np.isnan(values).any() or (values < 0).any():
        raise ValueError(f"changes must be a sequence of numbers >= 0; got {list(changes)}")
    return len(values) >= patience and bool((values[-int(patience):] < threshold).all())
