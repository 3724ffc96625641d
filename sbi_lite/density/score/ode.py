"""Adaptive Dormand–Prince RK45 for batched ODEs, with one step size shared by the batch."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["solve_rk45"]

_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
_C = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1]
_B5 = [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0]
_B4 = [5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40]


def solve_rk45(fn: Callable[[Tensor, float], Tensor], y0: Tensor, t0: float, t1: float, *, rtol: float = 1e-5,
               atol: float = 1e-5, max_steps: int = 10_000) -> tuple[Tensor, int]:
    """Integrate dy/dt = fn(y, t) from t0 to t1 (either direction); y0 (B, k).

    Returns:
        y(t1) and the number of function evaluations.
    """
    direction = 1.0 if t1 > t0 else -1.0
    t, y = t0, y0
    h = direction * min(abs(t1 - t0), 1e-2)
    evals, k1 = 1, fn(y0, t0)
    for _ in range(max_steps):
        if (t1 - t) * direction <= 0:
            break
        if (t + h - t1) * direction > 0:
            h = t1 - t
        ks = [k1]
        for i in range(1, 7):
            yi = y + h * sum(a * k for a, k in zip(_A[i], ks))
            ks.append(fn(yi, t + _C[i] * h))
        evals += 6
        y5 = y + h * sum(b * k for b, k in zip(_B5, ks))
        y4 = y + h * sum(b * k for b, k in zip(_B4, ks))
        scale = atol + rtol * torch.maximum(y.abs(), y5.abs())
        err = float(((y5 - y4) / scale).pow(2).mean().sqrt())
        if err <= 1.0:
            t, y, k1 = t + h, y5, ks[-1]  # first-same-as-last
        factor = 0.9 * (1.0 / max(err, 1e-10)) ** 0.2
        h = h * min(5.0, max(0.2, factor))
    else:
        raise RuntimeError(f"RK45 did not reach t = {t1} within {max_steps} steps")
    return y, evals
