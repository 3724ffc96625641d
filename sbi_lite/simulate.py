"""Running a simulator over a batch of parameters: chunks, workers, seeds, time limits, failures.

``simulate`` splits θ into fixed-size chunks and gives chunk i the i-th child of the run's
``SeedSequence``. Chunk boundaries depend only on ``chunk_size``, never on ``n_jobs`` or the
backend, so results are bit-identical wherever the chunks run:

- in this process (``n_jobs=1``, the default);
- on local worker processes (``n_jobs > 1`` or ``backend="processes"``): joblib's reusable loky
  executor, whose workers stay warm between calls (start-up, mostly importing torch, is paid
  once, not per call or per round of ``infer``), and which the parent can kill;
- on a dask cluster (``backend="dask"``, optional dependency ``sbi-lite[dask]``): a scheduler
  address, a ``distributed.Client``, or the current default client (else a ``LocalCluster``
  for the call).

Failures are bookkept, never lost or mis-paired: a row of NaN/inf from the simulator, or an
exception, marks that row failed. When a vectorised call raises, its chunk is re-run row by row
(each row with its own derived stream) so that one bad θ does not take its neighbours down, and
a warning says so once per call. A chunk that exceeds ``timeout`` has all its rows marked
failed ("timeout") and the run goes on. A worker process that dies mid-chunk costs at most that
chunk's rows: the chunks that ran beside it are re-run, and it is re-run alone (same stream, so
the same result) up to twice (``WORKER_RETRIES``) before its rows are marked failed ("worker
died").

Warm workers pay: 5 consecutive ``simulate(..., n_jobs=2)`` calls on 1,000 Lotka–Volterra prior
draws took 35.2 s (median of 3) with fresh workers per call and 10.5 s with reused ones
(benchmarks/results/simulate_workers.md).
"""

from __future__ import annotations

import inspect
import itertools
import threading
import time
import warnings
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import torch
from torch import Tensor

from sbi_lite.checks import progress_enabled
from sbi_lite.devices import seeded_rng
from sbi_lite.seeding import Seed, seed_sequence
from sbi_lite.simulate_backends import (
    ChunkResult, choose_backend, is_int, pickled, resolve_n_jobs, run_processes, run_serial,
)
from sbi_lite.simulate_dask import check_cluster, run_dask

__all__ = ["Simulations", "SimulatorShapeError", "simulate"]

# Simulators without an rng argument are seeded through the process-wide RNGs; dask runs chunks
# in worker threads, and two seeded scopes must not interleave there (reentrant: a simulator may
# itself call simulate).
_GLOBAL_RNG_LOCK = threading.RLock()


@dataclass(frozen=True)
class Simulations:
    """The outcome of ``simulate``.

    Attributes:
        theta: (n, d) parameters, in the order given.
        x: (n, d_x) outputs; rows of NaN where the run failed.
        failed: (n,) boolean mask of failed runs.
        errors: failure reason -> number of rows: the exception's type name, ``"non-finite output"``,
            ``"timeout"`` or ``"worker died"``.
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
        # simulators run on the CPU, never on a global default device
        arg = torch.as_tensor(theta, dtype=torch.get_default_dtype(), device="cpu") if torch_in else theta
        if self.takes_rng:
            return _to_numpy(self.simulator(arg, rng=np.random.default_rng(ss)))
        # A simulator without an rng argument draws from the global RNGs: seed them inside a
        # saved-and-restored scope so the run is reproducible and the caller's state untouched.
        with _GLOBAL_RNG_LOCK:
            np_state = np.random.get_state()
            try:
                with seeded_rng(int(ss.generate_state(1)[0])):
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

    def __call__(self, theta: np.ndarray, ss: np.random.SeedSequence) -> ChunkResult:
        rerun = None
        if self.vectorized:
            try:
                return ChunkResult(list(self._batch(theta, ss)), Counter(), {})
            except SimulatorShapeError:
                raise
            except Exception as e:  # noqa: BLE001 - re-run row by row below to salvage the chunk
                rerun = (type(e).__name__, str(e))
        rows = []
        errors: Counter = Counter()
        messages: dict[str, str] = {}
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
        return ChunkResult(rows, errors, messages, rerun)


def simulate(
    simulator: Callable,
    theta,
    *,
    seed: Seed = None,
    n_jobs: int = 1,
    chunk_size: int | None = None,
    backend: Literal["processes", "dask"] | None = None,
    cluster: Any = None,
    timeout: float | None = None,
    vectorized: bool = True,
    progress: bool | None = None,
    done: dict[int, ChunkResult] | None = None,
    on_chunk: Callable[[int, ChunkResult], None] | None = None,
) -> Simulations:
    """Simulate x ~ p(x|θ) for every row of θ, reproducibly and in parallel.

    Args:
        simulator: ``f(theta (m, d)) -> x (m, d_x)``; numpy or torch in and out. If it has a
            parameter named ``rng`` it is called as ``f(theta, rng=numpy Generator)``; otherwise
            the global numpy/torch RNGs are seeded from the run's stream inside a restored scope.
            Simulators with ``rng`` receive numpy θ; others receive θ in the type it was given.
            With ``vectorized=False`` it maps one θ (d,) to one x (d_x,). Must be picklable
            (cloudpickle) unless the chunks run in this process.
        theta: (n, d) parameters (numpy array, torch tensor or nested lists).
        seed: int, Generator or None (fresh entropy).
        n_jobs: workers: 1 runs in this process; k > 1 runs on k worker processes (started on
            first use, then reused by later calls); -1 all cores, -2 all but one, ... With ``backend="dask"`` and no client, the size of the
            ``LocalCluster`` started for the call.
        chunk_size: rows per chunk and per random stream (default 500). Results depend on it,
            never on ``n_jobs`` or the backend.
        backend: None (this process when ``n_jobs`` is 1, else worker processes),
            ``"processes"`` (worker processes even for ``n_jobs=1``, e.g. so that a time limit
            can stop a hung C extension) or ``"dask"``. A worker process that dies mid-chunk is
            replaced and the chunk re-run, twice at most; then its rows are marked failed
            (error ``"worker died"``).
        cluster: with ``backend="dask"`` only: a scheduler address such as
            ``"tcp://10.0.0.1:8786"``, a ``distributed.Client``, or None for the current
            default client, else a ``LocalCluster`` started and closed by this call.
        timeout: seconds one chunk may take; None for no limit. A chunk still running at the
            limit has all its rows marked failed (error ``"timeout"``) and the run goes on;
            finished chunks are kept. Worker processes are killed at the limit (which stops
            anything, C code included) and replaced, and the chunks that were running beside
            the late one are re-run from their start (same streams); in this process a SIGALRM interrupts
            Python code and sleeps (main thread only, and not over a SIGALRM timer of the
            caller's). Not available with ``backend="dask"``.
        vectorized: whether ``simulator`` takes a batch.
        progress: tqdm bar; default on only when stderr is a terminal.
        done, on_chunk: for callers that checkpoint (the round loop): ``on_chunk(i, result)`` is
            called as chunk i finishes; chunks in ``done`` (i -> result) are not run again. Same
            ``theta``, ``seed`` and ``chunk_size`` give the same chunks, so a resumed call
            assembles exactly what one uninterrupted call would.

    Returns:
        ``Simulations`` with float32 tensors ``theta`` (n, d), ``x`` (n, d_x) and ``failed`` (n,).

    Raises:
        TypeError, ValueError: for an invalid argument (named, with its value), before any run.
        ImportError: ``backend="dask"`` without dask.distributed installed.
        SimulatorShapeError: the simulator's output does not have one row per θ.

    Example:
        >>> sims = simulate(lambda t, rng: t + rng.normal(size=t.shape), np.zeros((4, 2)), seed=0)
        >>> sims.x.shape, sims.n_failed
        (torch.Size([4, 2]), 0)

        A chunk over the time limit fails as a whole; the others are kept:

        >>> def slow_if_positive(t, rng):
        ...     time.sleep(30 if (t > 0).any() else 0)
        ...     return t
        >>> sims = simulate(slow_if_positive, [[-1.0], [-1.0], [1.0], [1.0]], chunk_size=2, timeout=0.1)
        >>> sims.failed.tolist(), sims.errors
        ([False, False, True, True], {'timeout': 2})
    """
    if not callable(simulator):
        raise TypeError(f"simulator must be callable, got {type(simulator).__name__}")
    as_torch = isinstance(theta, Tensor)
    theta_np = _to_numpy(theta)
    if theta_np.ndim != 2 or len(theta_np) == 0:
        raise ValueError(f"theta must have shape (n, d) with n >= 1; got {theta_np.shape}")
    n_workers = resolve_n_jobs(n_jobs)
    chunk_size = 500 if chunk_size is None else chunk_size
    if not is_int(chunk_size) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got chunk_size={chunk_size!r}")
    backend = choose_backend(backend, n_workers, cluster, timeout)
    if backend == "dask":
        check_cluster(cluster)
    runner = _Runner(simulator, vectorized, as_torch)
    payload = None if backend == "serial" else pickled(runner, simulator, backend, n_jobs)
    n = len(theta_np)
    starts = range(0, n, chunk_size)
    streams = seed_sequence(seed).spawn(len(starts))
    jobs = [(theta_np[s : s + chunk_size], ss) for s, ss in zip(starts, streams)]
    done = dict(done or {})
    todo = [i for i in range(len(jobs)) if i not in done]

    t0 = time.perf_counter()
    pending = [jobs[i] for i in todo]
    if backend == "serial":
        results = run_serial(runner, pending, timeout)
    elif backend == "processes":
        results = run_processes(payload, pending, n_workers, timeout)
    else:
        results = run_dask(runner, pending, cluster, n_workers)

    from tqdm.auto import tqdm

    chunks: list[list[np.ndarray | None]] = [[] for _ in jobs]
    errors: Counter = Counter()
    messages: dict[str, str] = {}
    warned = False
    # closing: on an error here the backend stops its chunks (and frees the worker pool) at once,
    # not whenever the traceback that holds this frame is collected
    with closing(results), tqdm(total=n, unit="sim", desc="simulate", disable=not progress_enabled(progress),
                                leave=False) as bar:
        for i, result in itertools.chain(done.items(), ((todo[j], r) for j, r in results)):
            if on_chunk is not None and i not in done:
                on_chunk(i, result)
            chunks[i] = result.rows
            errors.update(result.errors)
            for k, v in result.messages.items():
                messages.setdefault(k, v)
            if result.rerun is not None and not warned:
                warnings.warn(f"the simulator raised {result.rerun[0]}: {result.rerun[1]!r} on a batch of "
                              f"{len(result.rows)}; that chunk was re-run row by row (warned once per call)",
                              UserWarning, stacklevel=2)
                warned = True
            bar.update(len(result.rows))
    seconds = time.perf_counter() - t0
    return _assemble(theta_np, [r for rows in chunks for r in rows], errors, messages, seconds)


def _assemble(theta_np, rows, errors, messages, seconds) -> Simulations:
    shapes = {r.shape[-1] for r in rows if r is not None}
    if not shapes:
        detail = "; ".join(f"{k} x{v}: {messages.get(k, '')}" for k, v in errors.items())
        raise RuntimeError(f"all {len(theta_np)} simulations failed ({detail})")
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
        theta=torch.as_tensor(theta_np, dtype=dtype, device="cpu"),
        x=torch.as_tensor(x, dtype=dtype, device="cpu"),
        failed=torch.as_tensor(failed, device="cpu"),
        errors=dict(errors),
        messages=messages,
        seconds=seconds,
    )
