"""Argument checks shared by the calibration diagnostics (private)."""

from __future__ import annotations

import numpy as np
import torch


def as_array(name: str, value, ndim: int, *, allow_inf: bool = False) -> np.ndarray:
    """``value`` (numpy, torch or nested lists) as float64 with ``ndim`` dimensions, checked.

    Raises:
        ValueError: naming ``name`` when the shape is wrong, an axis is empty or a value is NaN
            (or infinite, unless ``allow_inf``: log-densities may be -inf).
    """
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {arr.shape}")
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be {'free of NaN' if allow_inf else 'finite'}; "
                         f"{name}[{', '.join(map(str, first))}] = {arr[first]}")
    return arr


def check_alpha(alpha: float) -> float:
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return float(alpha)


def break_ties(below: np.ndarray, equal: np.ndarray, seed) -> np.ndarray:
    """Ranks ``below + U{0..equal}``: ties broken uniformly at random, so ranks stay uniform."""
    if not equal.any():
        return below.astype(np.int64)
    from sbi_lite.seeding import seed_sequence

    rng = np.random.default_rng(seed_sequence(seed))
    return (below + rng.integers(0, equal + 1)).astype(np.int64)
