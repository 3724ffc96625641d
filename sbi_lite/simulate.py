"""Running a simulator over a batch of parameters: chunks, joblib workers, seeds, failures.

``simulate`` splits θ into fixed-size chunks and gives chunk i the i-th child of the run's
``SeedSequence``. Chunk boundaries depend only on ``chunk_size``, never on ``n_jobs`` or the
backend, so results are bit-identical for any number of workers. A scale-out to a dask
cluster is ``backend="dask"`` (joblib's dask backend, with a ``dask.distributed.Client``
running); nothing else changes.

Failures are bookkept, never lost: a row of NaN/inf from the simulator, or an exception, marks
that row failed. When a vectorised call raises, its chunk is re-run row by row (each row with
its own derived stream) so that one bad θ does not take its neighbours down.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from sbi_lite.seeding import Seed, seed_sequence

__all__ = ["Simulations", "SimulatorShapeError", "simulate"]


@dataclass(frozen=True)
class Simulations:
    """The outcome of ``simulate``.

    Attributes:
        theta: (n, d) parameters, in the order given.
        x: (n, d_x) outputs; rows of NaN where the run failed.
        failed: (n,) boolean mask of failed runs.
        errors: failure reason -> number of rows (exception type name, or ``"non-finite output"``).
        messages: failure reason -> first message seen, for diagnosis.
        seconds: wall-clock time of the call.
    """

    theta: Tensor
    x: Tensor
    failed: Tensor
    errors: dict[str, int] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def n_failed(self) -> int:
        return int(self.failed.sum())

    @property
    def failure_fraction(self) -> float:
        return self.n_failed / max(len(self.failed), 1)

    def valid(self) -> tuple[Tensor, Tensor]:
        """(θ, x) of the successful runs only, still paired."""
        ok = ~self.failed
        return self.theta[ok], self.x[ok]

    def __repr__(self) -> str:
        n, dx = self.x.shape
        return f"Simulations(n={n}, d_x={dx}, failed={self.n_failed}, errors={dict(self.errors)}, seconds={self.seconds:.2f})"


def _takes_rng(simulator: Callable) -> bool:
    try:
        return "rng" in inspect.signature(simulator).parameters
    except (TypeError, ValueError):
        return False


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


class SimulatorShapeError(ValueError):
    """The simulator's output does not have one row per θ: a bug to report, not a failed run."""


class _Runner:
    """Calls the user's simulator on one block of θ with one random stream (picklable)."""

    def __init__(self, simulator: Callable, vectorized: bool, as_torch: bool):
        self.simulator = simulator
        self.vectorized = vectorized
        self.as_torch = as_torch
        self.takes_rng = _takes_rng(simulator)

    def _call(self, theta: np.ndarray, ss: np.random.SeedSequence) -> np.ndarray:
        # simulators that take an rng are numpy simulators; plain callables get what the caller gave
        torch_in = self.as_torch and not self.takes_rng
        arg = torch.as_tensor(theta, dtype=torch.get_default_dtype()) if torch_in else theta
        if self.takes_rng:
            return _to_numpy(self.simulator(arg, rng=np.random.default_rng(ss)))
        # A simulator without an rng argument draws from the global RNGs: seed them inside a
        # saved-and-restored scope so the run is reproducible and the caller's state untouched.
        np_state = np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(ss.generate_state(1)[0]))
                np.random.seed(ss.generate_state(1)[0])
                return _to_numpy(self.simulator(arg))
        finally:
            np.random.set_state(np_state)

    def _batch(self, theta: np.ndarray, ss: np.random.SeedSequence) -> np.ndarray:
        if self.vectorized:
            x = self._call(theta, ss)
            if x.ndim == 1 and len(x) == len(theta):
                x = x[:, None]
            if x.ndim != 2 or len(x) != len(theta):
                raise SimulatorShapeError(
                    f"simulator returned shape {x.shape} for a batch of {len(theta)} parameters; "
                    f"expected ({len(theta)}, d_x). For a function of one θ pass vectorized=False."
                )
            return x
        return self._call(theta[0], ss).reshape(1, -1)

    def __call__(self, theta: np.ndarray, ss: np.random.SeedSequence):
        errors: Counter = Counter()
        messages: dict[str, str] = {}
        if self.vectorized:
            try:
                return list(self._batch(theta, ss)), errors, messages
            except SimulatorShapeError:
                raise
            except Exception:  # noqa: BLE001 - re-run row by row below to salvage the chunk
                pass
        rows = []
        for theta_i, ss_i in zip(theta, ss.spawn(len(theta))):
            try:
                rows.append(self._batch(theta_i[None], ss_i)[0])
            except SimulatorShapeError:
                raise
            except Exception as e:  # noqa: BLE001 - a failed run is data, not a crash
                name = type(e).__name__
                errors[name] += 1
                messages.setdefault(name, str(e))
                rows.append(None)
        return rows, errors, messages


def _progress_enabled(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else bool(progress)


def simulate(
    simulator: Callable,
    theta,
    *,
    seed: Seed = None,
    n_jobs: int = 1,
    chunk_size: int | None = None,
    backend: str | None = None,
    vectorized: bool = True,
    progress: bool | None = None,
) -> Simulations:
    """Simulate x ~ p(x|θ) for every row of θ, reproducibly and in parallel.

    Args:
        simulator: ``f(theta (m, d)) -> x (m, d_x)``; numpy or torch in and out. If it has a
            parameter named ``rng`` it is called as ``f(theta, rng=numpy Generator)``; otherwise
            the global numpy/torch RNGs are seeded from the run's stream inside a restored scope.
            Simulators with ``rng`` receive numpy θ; others receive θ in the type it was given.
            With ``vectorized=False`` it maps one θ (d,) to one x (d_x,).
        theta: (n, d) parameters (numpy array, torch tensor or nested lists).
        seed: int, Generator or None (fresh entropy).
        n_jobs: joblib workers (-1 = all cores).
        chunk_size: rows per chunk and per random stream (default 500). Results depend on it,
            never on ``n_jobs``.
        backend: joblib backend (default loky when ``n_jobs != 1``; ``"dask"`` for a cluster).
        vectorized: whether ``simulator`` takes a batch.
        progress: tqdm bar; default on only when stderr is a terminal.

    Returns:
        ``Simulations`` with float32 tensors ``theta`` (n, d), ``x`` (n, d_x) and ``failed`` (n,).

    Example:
        >>> sims = simulate(lambda t, rng: t + rng.normal(size=t.shape), np.zeros((4, 2)), seed=0)
        >>> sims.x.shape, sims.n_failed
        (torch.Size([4, 2]), 0)
    """
    if not callable(simulator):
        raise TypeError(f"simulator must be callable, got {type(simulator).__name__}")
    as_torch = isinstance(theta, Tensor)
    theta_np = _to_numpy(theta)
    if theta_np.ndim != 2 or len(theta_np) == 0:
        raise ValueError(f"theta must have shape (n, d) with n >= 1; got {theta_np.shape}")
    chunk_size = 500 if chunk_size is None else int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    n = len(theta_np)
    starts = range(0, n, chunk_size)
    streams = seed_sequence(seed).spawn(len(starts))
    runner = _Runner(simulator, vectorized, as_torch)
    jobs = [(theta_np[s : s + chunk_size], ss) for s, ss in zip(starts, streams)]

    t0 = time.perf_counter()
    if n_jobs == 1 and backend is None:
        results = (runner(*job) for job in jobs)
    else:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=n_jobs, backend=backend or "loky", return_as="generator")
        results = parallel(delayed(runner)(*job) for job in jobs)

    from tqdm.auto import tqdm

    rows: list[np.ndarray | None] = []
    errors: Counter = Counter()
    messages: dict[str, str] = {}
    with tqdm(total=n, unit="sim", desc="simulate", disable=not _progress_enabled(progress), leave=False) as bar:
        for chunk_rows, chunk_errors, chunk_messages in results:
            rows.extend(chunk_rows)
            errors.update(chunk_errors)
            for k, v in chunk_messages.items():
                messages.setdefault(k, v)
            bar.update(len(chunk_rows))
    seconds = time.perf_counter() - t0
    return _assemble(theta_np, rows, errors, messages, seconds)


def _assemble(theta_np, rows, errors, messages, seconds) -> Simulations:
    shapes = {r.shape[-1] for r in rows if r is not None}
    if not shapes:
        detail = "; ".join(f"{k} x{v}: {messages.get(k, '')}" for k, v in errors.items())
        raise RuntimeError(f"all {len(theta_np)} simulations raised an exception ({detail})")
    if len(shapes) > 1:
        raise ValueError(f"simulator returned outputs of different sizes {sorted(shapes)}")
    d_x = shapes.pop()
    x = np.full((len(theta_np), d_x), np.nan)
    for i, r in enumerate(rows):
        if r is not None:
            x[i] = r
    failed = ~np.isfinite(x).all(axis=1)
    n_nonfinite = int(failed.sum()) - sum(errors.values())
    if n_nonfinite:
        errors["non-finite output"] += n_nonfinite
    x[failed] = np.nan
    dtype = torch.get_default_dtype()
    return Simulations(
        theta=torch.as_tensor(theta_np, dtype=dtype),
        x=torch.as_tensor(x, dtype=dtype),
        failed=torch.as_tensor(failed),
        errors=dict(errors),
        messages=messages,
        seconds=seconds,
    )
