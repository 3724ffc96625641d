"""Where the chunks of ``simulate`` run: this process or local worker processes (a dask cluster
is in ``simulate_dask``); and the checks of the arguments that choose.

Every backend takes a picklable ``runner(theta_chunk, seed_sequence) -> ChunkResult`` and the
list of jobs, and yields ``(chunk index, ChunkResult)`` as chunks finish, in any order;
``simulate`` puts each chunk back in its place. A chunk that cannot finish (time limit, a worker
that keeps dying) comes back with all its rows failed, so it never costs the other chunks.
"""

from __future__ import annotations

import math
import os
import pickle
import signal
import threading
import time
import warnings
from collections import Counter, deque
from contextlib import contextmanager
from multiprocessing.connection import wait
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np
import torch
from joblib.externals.loky.backend.context import get_context
from joblib.parallel import get_active_backend

__all__ = ["BACKENDS", "ChunkResult", "Job", "WORKER_RETRIES", "choose_backend", "failed_chunk", "is_int", "pickled",
           "resolve_n_jobs", "run_processes", "run_serial"]

BACKENDS = ("processes", "dask")

# How many times a chunk is re-run after its worker process died before its rows are marked failed.
WORKER_RETRIES = 2

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


def _worker(conn: Any, payload: bytes, n_threads: int) -> None:
    """Worker process: load the runner, say ready, then run the chunks it is sent."""
    torch.set_num_threads(n_threads)  # n workers share the cores, as loky does
    try:
        runner = pickle.loads(payload)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(_picklable(e))
        return
    conn.send("ready")
    while True:
        try:
            i, theta, ss = conn.recv()
        except EOFError:  # the parent is gone; while it lives, it ends a worker by killing it
            return
        try:
            conn.send((i, runner(theta, ss)))
        except Exception as e:  # noqa: BLE001 - a bug (e.g. SimulatorShapeError): the parent raises it
            conn.send((i, _picklable(e)))


def _picklable(e: Exception) -> Exception:
    try:
        pickle.dumps(e)
        return e
    except Exception:  # noqa: BLE001 - some exceptions cannot travel; their text can
        return RuntimeError(f"{type(e).__name__}: {e}")


class _Slot:
    """One worker process and the chunk it is running (``job``) with its deadline."""

    def __init__(self, ctx: Any, payload: bytes, n_threads: int):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, payload, n_threads), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.job: int | None = None
        self.deadline = math.inf

    def start(self, i: int, jobs: list[Job], timeout: float | None) -> None:
        self.job = i
        self.deadline = math.inf if timeout is None else time.monotonic() + timeout
        try:
            self.conn.send((i, *jobs[i]))
        except OSError:  # it died since it said ready: settled as a death of chunk i, which is re-run
            pass

    def kill(self) -> None:
        """SIGKILL (TerminateProcess on Windows): nothing in the worker can block it."""
        if self.process.exitcode is None:
            try:
                os.kill(self.process.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
            except ProcessLookupError:
                pass
        self.process.join()
        self.conn.close()


def run_processes(payload: bytes, jobs: list[Job], n_workers: int,
                  timeout: float | None) -> Iterator[tuple[int, ChunkResult]]:
    """Chunks on ``n_workers`` fresh worker processes, one chunk per worker at a time.

    We manage the processes ourselves (rather than through joblib/loky) because the parent must
    know which chunk each worker is running: a worker past its deadline is killed (SIGKILL stops a
    hung C extension too, which no in-process signal can) and its chunk marked "timeout"; a worker
    that dies costs exactly its own chunk, which is re-run up to ``WORKER_RETRIES`` times and then
    marked "worker died". A loky pool breaks as a whole on a death, without saying whose chunk did
    it. Clocks start when a chunk is handed to a worker that is ready, so imports never count.
    """
    return _Pool(payload, jobs, n_workers, timeout).run()


class _Pool:
    def __init__(self, payload: bytes, jobs: list[Job], n_workers: int, timeout: float | None):
        # loky's processes are spawned (fork is unsafe once torch or the caller has started
        # threads) without re-running the caller's __main__, so scripts need no __main__ guard
        self.ctx = get_context("loky")
        self.payload, self.jobs, self.timeout = payload, jobs, timeout
        self.n_workers = min(n_workers, len(jobs))
        self.n_threads = max(1, (os.cpu_count() or 1) // self.n_workers)
        self.todo = deque(range(len(jobs)))
        self.deaths: Counter = Counter()
        self.slots: list[_Slot] = []

    def run(self) -> Iterator[tuple[int, ChunkResult]]:
        try:
            self.slots = [_Slot(self.ctx, self.payload, self.n_threads) for _ in range(self.n_workers)]
            while self.slots:
                for slot in self.slots:
                    if slot.ready and slot.job is None and self.todo:
                        slot.start(self.todo.popleft(), self.jobs, self.timeout)
                deadline = min(s.deadline for s in self.slots)
                wait([s.conn for s in self.slots] + [s.process.sentinel for s in self.slots],
                     timeout=None if deadline == math.inf else max(0.0, deadline - time.monotonic()))
                for slot in list(self.slots):
                    done = self._check(slot)
                    if done is not None:
                        yield done
                    if not slot.process.is_alive() or (slot.ready and slot.job is None and not self.todo):
                        slot.kill()
                        self.slots.remove(slot)
                        if self.todo:
                            self.slots.append(_Slot(self.ctx, self.payload, self.n_threads))
        finally:
            for slot in self.slots:
                slot.kill()

    def _check(self, slot: _Slot) -> tuple[int, ChunkResult] | None:
        """Read what ``slot`` has to say, or settle what a dead or late worker leaves behind."""
        message: Any = None
        if slot.conn.poll():
            try:
                message = slot.conn.recv()
            except (EOFError, OSError):  # died, maybe mid-message: settled below as a death
                slot.process.join()
        if isinstance(message, Exception):
            raise RuntimeError("a worker process could not load the simulator") from message
        if message == "ready":
            slot.ready = True
            return None
        i, slot.job = slot.job, None
        if message is not None:
            i, result = message
            if isinstance(result, Exception):
                raise result
            slot.deadline = math.inf
            return i, result
        if slot.process.is_alive():
            if i is None or time.monotonic() < slot.deadline:
                slot.job = i
                return None
            slot.kill()
            return i, _timed_out(len(self.jobs[i][0]), self.timeout)
        slot.process.join()
        if not slot.ready:
            raise RuntimeError(f"a worker process died while starting (exit code {slot.process.exitcode})")
        if i is None:  # killed while idle by someone else: the caller just replaces it
            return None
        self.deaths[i] += 1
        if self.deaths[i] <= WORKER_RETRIES:
            self.todo.appendleft(i)
            return None
        return i, failed_chunk(len(self.jobs[i][0]), "worker died",
                          f"the worker process died {self.deaths[i]} times running this chunk "
                          f"(last exit code {slot.process.exitcode})")
