"""Where the chunks of ``simulate`` run: this process or local worker processes (a dask cluster
is in ``simulate_dask``); and the checks of the arguments that choose.

Every backend takes a picklable ``runner(theta_chunk, seed_sequence) -> ChunkResult`` and the
list of jobs, and yields ``(chunk index, ChunkResult)`` as chunks finish, in any order;
``simulate`` puts each chunk back in its place. A chunk that cannot finish (time limit, a worker
that keeps dying) comes back with all its rows failed, so it never costs the other chunks their
results.
"""

from __future__ import annotations

import math
import os
import pickle
import signal
import tempfile
import threading
import time
import warnings
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np
import torch
from joblib.externals.loky import BrokenProcessPool, get_reusable_executor
from joblib.parallel import get_active_backend

__all__ = ["BACKENDS", "ChunkResult", "IDLE_WORKER_SECONDS", "Job", "WORKER_RETRIES", "choose_backend",
           "failed_chunk", "is_int", "pickled", "resolve_n_jobs", "run_processes", "run_serial"]

BACKENDS = ("processes", "dask")

# How many times a chunk is re-run after its worker process died before its rows are marked failed.
WORKER_RETRIES = 2
# joblib's own idle timeout for loky workers: long enough to outlast the training between rounds
IDLE_WORKER_SECONDS = 300
# how often the parent looks for the start of a chunk whose clock has not started yet
_POLL_SECONDS = 0.02
# The reusable executor is one per process: calls from several threads take turns, or one's
# timeout would kill the other's chunks along with the pool.
_POOL_LOCK = threading.Lock()

Job = tuple[np.ndarray, np.random.SeedSequence]


class ChunkResult(NamedTuple):
    """One chunk's outcome: ``rows`` has one (d_x,) array per θ, or None where the run raised;
    ``rerun`` is (exception type, message) when a vectorised call raised and the chunk was
    re-run row by row."""

    rows: list[np.ndarray | None]
    errors: Counter
    messages: dict[str, str]
    rerun: tuple[str, str] | None = None


def failed_chunk(n: int, kind: str, message: str) -> ChunkResult:
    """A chunk of ``n`` rows that all failed for one reason."""
    return ChunkResult([None] * n, Counter({kind: n}), {kind: message})


def _timed_out(n: int, timeout: float) -> ChunkResult:
    return failed_chunk(n, "timeout", f"chunk of {n} did not finish within timeout={timeout} s")


class _ChunkTimeout(BaseException):
    """Raised by SIGALRM; a BaseException so that the runner's row-by-row salvage, which catches
    Exception, cannot swallow it and keep running the chunk."""


def _alarm_usable() -> bool:
    """Whether a chunk can be timed with SIGALRM here: POSIX, the main thread, and no timer of
    the caller's already armed (ours would silently cancel it)."""
    return (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
            and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0))


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise _ChunkTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        # nested so that an alarm landing while the timer is cleared still restores the handler
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            signal.signal(signal.SIGALRM, previous)


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def resolve_n_jobs(n_jobs: Any) -> int:
    if not is_int(n_jobs):
        raise TypeError(f"n_jobs must be an int (1, 2, ..., or -1 for all cores), got n_jobs={n_jobs!r}")
    cores = os.cpu_count() or 1
    n_workers = int(n_jobs) if n_jobs > 0 else cores + 1 + int(n_jobs)
    if n_jobs == 0 or n_workers < 1:
        raise ValueError(f"n_jobs must be >= 1 workers, or -k for all {cores} cores but k - 1; got n_jobs={n_jobs}")
    return n_workers


def choose_backend(backend: Any, n_workers: int, cluster: Any, timeout: Any) -> str:
    """The backend to use ("serial", "processes" or "dask"), after checking the arguments that
    depend on it."""
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be None, 'processes' or 'dask', got backend={backend!r}")
    if backend is None and type(get_active_backend()[0]).__name__ == "DaskDistributedBackend":
        # simulate used to go through joblib, so a caller may expect joblib's config to reach it
        warnings.warn("simulate does not follow joblib.parallel_config(backend='dask'); pass backend='dask' "
                      "(and cluster=...) to run on the cluster", UserWarning, stacklevel=3)
    backend = backend or ("serial" if n_workers == 1 else "processes")
    if cluster is not None and backend != "dask":
        raise ValueError(f"cluster={cluster!r} is only used with backend='dask', got backend={backend!r}")
    if timeout is None:
        return backend
    if not isinstance(timeout, (int, float, np.integer, np.floating)) or isinstance(timeout, bool) \
            or not 0 < timeout < math.inf:
        raise ValueError(f"timeout must be a positive number of seconds or None, got timeout={timeout!r}")
    if backend == "dask":
        raise ValueError(f"timeout={timeout} is not supported with backend='dask': dask runs chunks in worker "
                         "threads, which cannot be interrupted; use backend='processes'")
    if backend == "serial" and not _alarm_usable():
        raise ValueError(f"timeout={timeout} with n_jobs=1 times chunks with SIGALRM, which needs the main thread "
                         "of a POSIX process with no SIGALRM timer already armed; use backend='processes'")
    return backend


def pickled(runner: Callable, simulator: Callable, backend: str, n_jobs: int) -> bytes:
    """The runner as cloudpickle bytes: checked here, before any run, so that an unpicklable
    simulator is reported by name rather than from deep inside a worker pool."""
    import cloudpickle

    try:
        return cloudpickle.dumps(runner)
    except Exception as e:
        name = getattr(simulator, "__qualname__", f"{type(simulator).__qualname__} instance")
        raise TypeError(f"simulator {name} must be picklable to run in workers (backend={backend!r}, "
                        f"n_jobs={n_jobs}), but cloudpickle failed with {type(e).__name__}: {e}. Define it at "
                        "module level without locks, open files or connections, or use n_jobs=1.") from e


def run_serial(runner: Callable, jobs: list[Job], timeout: float | None) -> Iterator[tuple[int, ChunkResult]]:
    """Chunks one after the other in this process; a time limit is a SIGALRM, which interrupts
    Python code and sleeps but not a C call that holds the GIL (use worker processes for that)."""
    for i, (theta, ss) in enumerate(jobs):
        if timeout is None:
            yield i, runner(theta, ss)
            continue
        try:
            with _alarm(timeout):
                result = runner(theta, ss)
        except _ChunkTimeout:
            result = _timed_out(len(theta), timeout)
        yield i, result


def _run_chunk(payload: bytes, theta: np.ndarray, ss: np.random.SeedSequence, n_threads: int,
               started: str | None) -> ChunkResult:
    """In a worker process: load the runner, touch ``started`` (the parent's signal that the
    chunk's clock runs: start-up and unpickling never count), run the chunk."""
    torch.set_num_threads(n_threads)  # n workers share the cores, as joblib's loky backend does
    try:
        runner = pickle.loads(payload)
    except Exception as e:  # the original cause travels in loky's remote traceback
        raise RuntimeError(f"a worker process could not load the simulator: {type(e).__name__}: {e}") from e
    if started is not None:
        open(started, "w").close()
    return runner(theta, ss)


def run_processes(payload: bytes, jobs: list[Job], n_workers: int,
                  timeout: float | None) -> Iterator[tuple[int, ChunkResult]]:
    """Chunks on the warm worker processes of joblib's reusable loky executor, one chunk per
    worker at a time, so that the parent always knows which chunks are running.

    Workers outlive the call (idle ones for ``IDLE_WORKER_SECONDS``), so the rounds of ``infer``
    pay the start-up (seconds: importing torch) once. A loky pool cannot kill or lose one task
    alone, so the parent settles those cases itself: a chunk past its deadline has the whole
    pool killed (SIGKILL stops a hung C extension too, which no in-process signal can), its rows
    are marked "timeout", and the other running chunks are re-run on fresh workers with the same
    streams (same results). A worker death breaks the pool without saying whose chunk caused
    it, so the chunks that were running are re-run one at a time: a chunk is charged a death
    only when it broke the pool while running alone, and after ``WORKER_RETRIES`` re-runs its
    rows are marked "worker died".
    """
    return _Pool(payload, jobs, n_workers, timeout).run()


class _Pool:
    def __init__(self, payload: bytes, jobs: list[Job], n_workers: int, timeout: float | None):
        self.payload, self.jobs, self.timeout, self.n_workers = payload, jobs, timeout, n_workers
        self.n_threads = max(1, (os.cpu_count() or 1) // n_workers)
        self.todo = deque(range(len(jobs)))
        self.suspects: deque = deque()  # running when the pool broke: re-run one at a time
        self.deaths: Counter = Counter()
        self.running: dict[Future, int] = {}
        self.markers: dict[Future, str] = {}
        self.started: dict[Future, float] = {}
        self.n_submitted = 0

    def _executor(self) -> Any:
        # loky's processes are spawned (fork is unsafe once torch or the caller has started
        # threads) without re-running the caller's __main__, so scripts need no __main__ guard
        return get_reusable_executor(max_workers=self.n_workers, context="loky", timeout=IDLE_WORKER_SECONDS)

    def run(self) -> Iterator[tuple[int, ChunkResult]]:
        with _POOL_LOCK, tempfile.TemporaryDirectory(prefix="sbi-lite-simulate-") as self.marker_dir:
            executor = self._executor()
            try:
                while self.todo or self.suspects or self.running:
                    self._submit(executor)
                    alone = len(self.running) == 1
                    done, _ = wait(self.running, timeout=self._until_next_check(), return_when=FIRST_COMPLETED)
                    broken = False
                    for future in done:
                        i = self._forget(future)
                        if not isinstance(future.exception(), BrokenProcessPool):
                            yield i, future.result()  # raises a simulator's bug (SimulatorShapeError)
                            continue
                        broken = True
                        result = self._broke(i, future.exception(), alone)
                        if result is not None:
                            yield i, result
                    if broken:  # the chunks still running are lost with the pool
                        self.suspects.extend(self._forget(f) for f in list(self.running))
                        executor = self._executor()  # a fresh one: the broken executor is replaced
                    elif self._late():
                        executor.shutdown(wait=False, kill_workers=True)
                        yield from self._settle_late()
                        executor = self._executor()
            finally:
                if self.running:  # an error or an abandoned call: stop what still runs
                    executor.shutdown(wait=False, kill_workers=True)

    def _submit(self, executor: Any) -> None:
        while (self.suspects and not self.running) or (self.todo and not self.suspects
                                                       and len(self.running) < self.n_workers):
            i = (self.suspects or self.todo).popleft()
            marker = None
            if self.timeout is not None:
                self.n_submitted += 1
                marker = os.path.join(self.marker_dir, str(self.n_submitted))
            future = executor.submit(_run_chunk, self.payload, *self.jobs[i], self.n_threads, marker)
            self.running[future] = i
            if marker is not None:
                self.markers[future] = marker

    def _forget(self, future: Future) -> int:
        self.markers.pop(future, None)
        self.started.pop(future, None)
        return self.running.pop(future)

    def _until_next_check(self) -> float | None:
        """Seconds until a deadline passes or a chunk's start should be looked for again."""
        if self.timeout is None:
            return None
        now = time.monotonic()
        for future, marker in self.markers.items():
            if future not in self.started and os.path.exists(marker):
                self.started[future] = now
        if len(self.started) < len(self.running):
            return _POLL_SECONDS
        return max(0.0, min(self.started.values()) + self.timeout - now)

    def _late(self) -> bool:
        now = time.monotonic()
        return any(now >= t + self.timeout and not f.done() for f, t in self.started.items())

    def _settle_late(self) -> Iterator[tuple[int, ChunkResult]]:
        """After the pool was killed: chunks past their deadline failed, finished ones are kept,
        the others run again (same streams, same results)."""
        now = time.monotonic()
        for future in list(self.running):
            late = future in self.started and now >= self.started[future] + self.timeout
            i = self._forget(future)
            if future.done() and future.exception() is None:
                yield i, future.result()
            elif late:
                yield i, _timed_out(len(self.jobs[i][0]), self.timeout)
            else:
                self.todo.appendleft(i)

    def _broke(self, i: int, error: BrokenProcessPool, alone: bool) -> ChunkResult | None:
        """Chunk ``i`` was running when the pool broke: a suspect, or the culprit if it ran alone."""
        if not alone:
            self.suspects.append(i)
            return None
        self.deaths[i] += 1
        if self.deaths[i] <= WORKER_RETRIES:
            self.suspects.appendleft(i)
            return None
        return failed_chunk(len(self.jobs[i][0]), "worker died", f"the worker process died {self.deaths[i]} times "
                            f"running this chunk alone; last: {error}")
