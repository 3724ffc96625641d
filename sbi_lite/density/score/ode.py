"""Adaptive Dormand–Prince RK45 for batched ODEs, with error control and a step size per row.

Each row of the batch is its own initial-value problem (the rows of a diffusion model's
probability-flow ODE are independent), so each row keeps its own time, step size and error
estimate, and a row that reaches the end drops out of the batch. With one step size shared by
the batch, the stiffest row would set the step for every row: a batch's cost would grow with its
size times its worst row's steps, and a row's result would depend on which rows it was solved
with. Here every row's result is what solving it alone gives (up to floating-point differences
in the batched function), and the cost is the sum of the rows' own costs.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import Tensor

__all__ = ["solve_rk45", "RK45Stats"]

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


class RK45Stats(NamedTuple):
    """What a solve cost.

    Attributes:
        calls: calls of the function (each on the rows still integrating).
        row_evaluations: rows evaluated, summed over the calls (the cost on a batch).
        steps: (B,) attempted steps per row, accepted and rejected (each costs 6 evaluations).
    """

    calls: int
    row_evaluations: int
    steps: Tensor


def solve_rk45(fn: Callable[[Tensor, Tensor, Tensor], Tensor], y0: Tensor, t0: float, t1: float, *,
               rtol: float = 1e-5, atol: float = 1e-5, max_steps: int = 10_000) -> tuple[Tensor, RK45Stats]:
    """Integrate dy/dt = fn(y, t) from t0 to t1 (either direction), each row on its own.

    Args:
        fn: ``fn(y, t, rows)`` -> dy/dt (m, k) for the m rows ``rows`` (m,) (indices into the
            batch, to pick per-row data such as a context) at states y (m, k) and times t (m,).
        y0: (B, k) initial states at t0.
        t0, t1: the interval.
        rtol, atol: per-row error tolerances (RMS over the row's k components).
        max_steps: attempted steps allowed to any one row.

    Returns:
        y(t1) (B, k) and the solve's ``RK45Stats``.

    Raises:
        RuntimeError: a row has not reached t1 within ``max_steps`` steps.

    Example:
        >>> y, stats = solve_rk45(lambda y, t, rows: -y * rows[:, None], torch.ones(2, 1), 0.0, 1.0)
        >>> [round(v, 4) for v in y[:, 0].tolist()], stats.steps[0] < stats.steps[1]
        ([1.0, 0.3679], tensor(True))
    """
    b = len(y0)
    direction = 1.0 if t1 > t0 else -1.0
    # times in float64 whatever y's dtype, so that thousands of small steps add up exactly enough
    t = torch.full((b,), float(t0), dtype=torch.float64, device=y0.device)
    h = torch.full((b,), direction * min(abs(t1 - t0), 1e-2), dtype=torch.float64, device=y0.device)
    steps = torch.zeros(b, dtype=torch.long, device=y0.device)
    done = torch.zeros(b, dtype=torch.bool, device=y0.device)
    rows = torch.arange(b, device=y0.device)
    y = y0.clone()
    k1 = fn(y0, t.to(y0.dtype), rows)
    calls, row_evals = 1, b
    for _ in range(max_steps):
        active = rows[~done]
        if not len(active):
            break
        ya, ta, ha = y[active], t[active], h[active]
        last = (ta + ha - t1) * direction >= 0  # this step would reach (or pass) t1: end it there
        ha = torch.where(last, t1 - ta, ha)
        hy = ha.to(y.dtype)[:, None]
        ks = [k1[active]]
        for i in range(1, 7):
            yi = ya + hy * sum(a * k for a, k in zip(_A[i], ks))
            ks.append(fn(yi, (ta + _C[i] * ha).to(y.dtype), active))
        calls, row_evals = calls + 6, row_evals + 6 * len(active)
        y5 = ya + hy * sum(b_ * k for b_, k in zip(_B5, ks))
        y4 = ya + hy * sum(b_ * k for b_, k in zip(_B4, ks))
        scale = atol + rtol * torch.maximum(ya.abs(), y5.abs())
        err = ((y5 - y4) / scale).pow(2).mean(-1).sqrt().to(torch.float64)
        ok = err <= 1.0
        moved = active[ok]
        y[moved], k1[moved] = y5[ok], ks[-1][ok]  # first-same-as-last
        t[moved] = torch.where(last, torch.full_like(ta, t1), ta + ha)[ok]
        done[active[ok & last]] = True
        steps[active] += 1
        factor = 0.9 * err.clamp_min(1e-10) ** -0.2
        h[active] = ha * factor.clamp(0.2, 5.0)
    else:
        if not bool(done.all()):
            raise RuntimeError(f"RK45: {int((~done).sum())} of {b} rows did not reach t = {t1} within "
                               f"{max_steps} steps")
    return y, RK45Stats(calls, row_evals, steps)
