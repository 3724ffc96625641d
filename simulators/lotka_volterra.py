"""Lotka–Volterra predator–prey Markov jump process, simulated exactly with Gillespie's algorithm.

θ are log rates with U(−5, 2) priors. State (predators X, prey Y) starts at (50, 100); the four
reactions (predator born, predator dies, prey born, prey eaten) have propensities XY, X, Y, XY.
The series is recorded on t = 0, 0.2, …, 30 the way the original code did: reactions fire while
the grid time is ahead of the process time, so each recorded state already includes the first
reaction at or after the grid time. More than 10,000 reactions is a failed run (a row of NaN).

``simulate`` advances every live trajectory of the batch one reaction per numpy step, which is
what makes this simulator fast; ``simulate_loop`` is the plain per-trajectory loop kept as the
reference it is tested against.
"""

from __future__ import annotations

import numpy as np
import torch

from sbi_lite.priors import BoxUniform
from simulators.task import Task

__all__ = ["THETA_TRUE", "X0", "X0_RAW", "PILOT_MEAN", "PILOT_STD", "simulate", "simulate_loop",
           "summary_statistics", "task"]

THETA_TRUE = np.log(np.array([0.01, 0.5, 1.0, 0.01]))
INIT = np.array([50, 100])
DT, DURATION, MAX_REACTIONS = 0.2, 30.0, 10_000
N_RECORDS = int(DURATION / DT) + 1  # 151

# Stoichiometry of the four reactions on (X, Y).
CHANGE = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]])
DX, DY = CHANGE[:, 0].astype(np.float64), CHANGE[:, 1].astype(np.float64)

PILOT_MEAN = np.array([219.80177483443728, 5.830814569536403, 6.636608578145706, 4.444700020848168,
                       0.8408783423013526, 0.7379918995955513, 0.13501840665947853,
                       0.07474726910613821, 0.12483585523376277])
PILOT_STD = np.array([592.3261070679229, 54.66499823179135, 2.969361491862029, 0.9018732576373955,
                      0.17981176374868152, 0.2567860903637174, 0.2662085535541585,
                      0.2029963801597384, 0.3757516130682276])
X0_RAW = np.array([95.2251655629139, 51.966887417218544, 8.673645613767254, 8.051495657751438,
                   0.9800023163789862, 0.9349876506264332, 0.9772874722030622, 0.9269218757264457,
                   0.02293618463877707])
X0 = (X0_RAW - PILOT_MEAN) / PILOT_STD


def _grid() -> np.ndarray:
    # The original accumulated `cur_time += dt`; reproduce its floating-point grid exactly.
    grid, t = np.empty(N_RECORDS), 0.0
    for i in range(N_RECORDS):
        grid[i] = t
        t += DT
    return grid


GRID = _grid()


def _propensities(state: np.ndarray) -> np.ndarray:
    x, y = state[..., 0].astype(np.float64), state[..., 1].astype(np.float64)
    xy = x * y
    return np.stack([xy, x, y, xy], axis=-1)


def summary_statistics(series: np.ndarray) -> np.ndarray:
    """The 9 raw statistics of series (n, 151, 2) -> (n, 9); NaN where a series is constant."""
    x, y = series[..., 0].astype(np.float64), series[..., 1].astype(np.float64)
    n = x.shape[-1]

    def standardise(v):
        sd = v.std(-1, ddof=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (v - v.mean(-1, keepdims=True)) / sd

    xs, ys = standardise(x), standardise(y)

    def corr(a, b, lag):
        return (a[..., : n - lag] * b[..., lag:]).sum(-1) / (n - 1)

    return np.stack([
        x.mean(-1), y.mean(-1),
        np.log(x.var(-1, ddof=1) + 1), np.log(y.var(-1, ddof=1) + 1),
        corr(xs, xs, 1), corr(xs, xs, 2), corr(ys, ys, 1), corr(ys, ys, 2),
        corr(xs, ys, 0),
    ], axis=-1)


def _series_vectorised(theta: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Gillespie for all rows at once: (n, 151, 2) series and (n,) failure mask.

    The live trajectories are kept in compact arrays so that one reaction step is a dozen
    vectorised operations without fancy indexing; the arrays are re-compacted only when a
    trajectory finishes or fails.
    """
    n = len(theta)
    series = np.zeros((n, N_RECORDS, 2), dtype=np.int64)
    written = np.zeros((n, N_RECORDS), dtype=bool)
    series[:, 0], written[:, 0] = INIT, True  # record 0 is the initial state
    failed = np.zeros(n, dtype=bool)
    ids = np.arange(n)
    rates = np.exp(theta)
    x, y = np.full(n, float(INIT[0])), np.full(n, float(INIT[1]))
    now, steps = np.zeros(n), np.zeros(n, dtype=np.int64)
    k = np.ones(n, dtype=np.int64)  # next grid index to record
    next_time = np.full(n, GRID[1])
    while ids.size:
        xy = x * y
        r0, r1, r2 = rates[:, 0] * xy, rates[:, 1] * x, rates[:, 2] * y
        c1, c2 = r0, r0 + r1
        c3 = c2 + r2
        total = c3 + rates[:, 3] * xy
        frozen = total == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            now += rng.exponential(size=ids.size) / total
            u = rng.random(ids.size)
            reaction = (u > c1 / total).astype(np.int64) + (u > c2 / total) + (u > c3 / total)
        now[frozen] = np.inf
        dx, dy = DX[reaction], DY[reaction]
        dx[frozen], dy[frozen] = 0, 0
        x += dx
        y += dy
        steps += 1
        # A jump past the next grid time records the post-jump state at every grid point it
        # passes: written once at the first and forward-filled at the end.
        moved = np.flatnonzero(now >= next_time)
        if moved.size:
            gid, km = ids[moved], k[moved]
            series[gid, km, 0], series[gid, km, 1] = x[moved], y[moved]
            written[gid, km] = True
            k[moved] = np.minimum(np.searchsorted(GRID, now[moved], side="right"), N_RECORDS)
            next_time[moved] = GRID[np.minimum(k[moved], N_RECORDS - 1)]
        too_long = steps > MAX_REACTIONS
        done = (k >= N_RECORDS) | too_long
        if done.any():
            failed[ids[too_long]] = True
            keep = ~done
            ids, rates, x, y, now, steps, k, next_time = (
                a[keep] for a in (ids, rates, x, y, now, steps, k, next_time))
    last = np.maximum.accumulate(np.where(written, np.arange(N_RECORDS), 0), axis=1)
    series = np.take_along_axis(series, last[..., None], axis=1)
    return series, failed


def _normalised(series: np.ndarray, failed: np.ndarray) -> np.ndarray:
    stats = (summary_statistics(series) - PILOT_MEAN) / PILOT_STD
    stats[failed] = np.nan
    return stats


def simulate(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Normalised summary statistics for log-rates θ (n, 4) -> (n, 9); NaN rows for failed runs.

    Example:
        >>> simulate(THETA_TRUE[None], np.random.default_rng(0)).shape
        (1, 9)
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    return _normalised(*_series_vectorised(theta, rng))


def _series_loop(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """The original algorithm, one trajectory at a time (None when too long)."""
    rates = np.exp(theta)
    state, now, cur, steps = INIT.copy(), 0.0, 0.0, 0
    out = np.empty((N_RECORDS, 2), dtype=np.int64)
    for i in range(N_RECORDS):
        while cur > now:
            r = rates * _propensities(state)
            total = r.sum()
            if total == 0:
                now = np.inf
                break
            now += rng.exponential(1 / total)
            reaction = int((rng.random() > np.cumsum(r[:-1] / total)).sum())
            state = state + CHANGE[reaction]
            steps += 1
            if steps > MAX_REACTIONS:
                return None
        out[i] = state
        cur += DT
    return out


def simulate_loop(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Reference implementation of ``simulate``: a plain Python Gillespie loop per row."""
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    series = [_series_loop(t, rng) for t in theta]
    failed = np.array([s is None for s in series])
    stacked = np.stack([np.zeros((N_RECORDS, 2), np.int64) if s is None else s for s in series])
    return _normalised(stacked, failed)


def task() -> Task:
    return Task(
        name="lotka_volterra",
        prior=BoxUniform(-5 * torch.ones(4), 2 * torch.ones(4)),
        simulator=simulate,
        x0=X0.copy(),
        theta_true=THETA_TRUE.copy(),
    )
