import contextlib
import os
import signal
import threading
import time
import warnings
from collections import Counter

import numpy as np
import pytest
import torch

from sbi_lite import simulate
from simulators import get_task


def _raises_on_negative(theta, rng):
    if (theta[:, 0] < 0).any():
        raise ValueError("negative rate")
    return theta + rng.normal(scale=1e-3, size=theta.shape)


class _Sleepy:
    """θ + noise; sleeps ``seconds`` on a batch holding a θ with θ_0 above ``above``, with
    SIGALRM blocked when ``deaf`` (like a C call that never returns to the interpreter)."""

    def __init__(self, above: float, seconds: float = 30.0, deaf: bool = False):
        self.above, self.seconds, self.deaf = above, seconds, deaf

    def __call__(self, theta, rng):
        if (theta[:, 0] > self.above).any():
            if self.deaf:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(self.seconds)
        return theta + rng.normal(size=theta.shape)


class _KillsWorker:
    """θ + noise; SIGKILLs its own process on a batch holding θ_0 == ``value`` — once when
    ``marker`` is a path (the file records that it happened), every time when it is None;
    other batches take ``pause`` seconds."""

    def __init__(self, value: float, marker=None, pause: float = 0.0):
        self.value, self.marker, self.pause = value, marker, pause

    def __call__(self, theta, rng):
        if (theta[:, 0] == self.value).any() and not (self.marker and os.path.exists(self.marker)):
            if self.marker:
                open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.pause)
        return theta + rng.normal(size=theta.shape)


def _same(a, b) -> bool:
    return torch.equal(a.failed, b.failed) and torch.equal(a.x.nan_to_num(123.0), b.x.nan_to_num(123.0))


@pytest.fixture(scope="module")
def lv_theta():
    task = get_task("lotka_volterra")
    theta = task.prior.sample((120,), generator=torch.Generator().manual_seed(0))
    return task, theta, simulate(task.simulator, theta, seed=11, n_jobs=1, chunk_size=30)


def test_identical_for_any_n_jobs(lv_theta):
    task, theta, a = lv_theta
    b = simulate(task.simulator, theta, seed=11, n_jobs=2, chunk_size=30)
    assert _same(a, b)
    c = simulate(task.simulator, theta, seed=12, chunk_size=30)
    assert not torch.allclose(a.x.nan_to_num(0.0), c.x.nan_to_num(0.0))
    assert a.n_failed == int(torch.isnan(a.x[:, 0]).sum()) and a.errors == {"non-finite output": a.n_failed}


def test_raising_simulator_marks_rows_failed_and_keeps_pairing():
    theta = np.linspace(-1, 1, 40)[:, None].repeat(2, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sims = simulate(_raises_on_negative, theta, seed=0, chunk_size=8)
    negative = torch.as_tensor(theta[:, 0] < 0)
    assert torch.equal(sims.failed, negative)
    assert sims.errors == {"ValueError": int(negative.sum())}
    assert sims.messages["ValueError"] == "negative rate"
    # three chunks were re-run row by row, one warning says so
    assert len(caught) == 1 and caught[0].category is UserWarning
    assert "ValueError: 'negative rate'" in str(caught[0].message) and "row by row" in str(caught[0].message)
    ok_theta, ok_x = sims.valid()
    # x = θ + N(0, 1e-3²): every row within 5e-3 of its own θ, while neighbours are ≥ 0.05 apart
    assert len(ok_theta) == 20 and torch.allclose(ok_x, ok_theta, rtol=0, atol=5e-3)
    # row-wise salvage is itself deterministic, and reported from worker processes too
    with pytest.warns(UserWarning, match="row by row"):
        again = simulate(_raises_on_negative, theta, seed=0, chunk_size=8, n_jobs=2)
    assert _same(sims, again)


def test_plain_callables_torch_and_single_theta():
    theta = torch.zeros(10, 3)
    def noisy(t):  # global-RNG user simulator, torch in and out
        return t + torch.randn_like(t)
    a, b = simulate(noisy, theta, seed=5), simulate(noisy, theta, seed=5)
    assert torch.equal(a.x, b.x) and a.x.std() > 0.5

    def one(t):  # one θ at a time, numpy
        return np.array([t.sum(), np.random.normal()])
    c = simulate(one, np.ones((7, 3)), seed=1, vectorized=False)
    assert c.x.shape == (7, 2) and torch.allclose(c.x[:, 0], torch.full((7,), 3.0))


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"theta must have shape \(n, d\)"):
        simulate(lambda t, rng: t, np.zeros(3))
    for backend in (None, "processes"):  # a bug, not a failed run: raised from a worker too
        with pytest.raises(ValueError, match=r"returned shape \(2, 2\) for a batch of 4.*vectorized=False"):
            simulate(lambda t, rng: t[:2], np.zeros((4, 2)), backend=backend)
    with pytest.raises(TypeError, match="callable"):
        simulate("sim", np.zeros((4, 2)))
    with pytest.raises(RuntimeError, match="all 3 simulations failed"), pytest.warns(UserWarning, match="ZeroDivision"):
        simulate(lambda t: 1 / 0, np.zeros((3, 1)))


def _never(theta, rng):
    raise AssertionError("a simulation ran before the arguments were checked")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_jobs": 0}, ValueError, "n_jobs=0"),
    ({"n_jobs": -1000}, ValueError, "n_jobs=-1000"),
    ({"n_jobs": 2.0}, TypeError, "n_jobs=2.0"),
    ({"n_jobs": True}, TypeError, "n_jobs=True"),
    ({"chunk_size": 0}, ValueError, "chunk_size=0"),
    ({"chunk_size": 2.5}, ValueError, "chunk_size=2.5"),
    ({"backend": "loky"}, ValueError, "backend='loky'"),
    ({"timeout": 0}, ValueError, "timeout=0"),
    ({"timeout": -1.0}, ValueError, "timeout=-1.0"),
    ({"timeout": float("nan")}, ValueError, "timeout=nan"),
    ({"cluster": "tcp://127.0.0.1:8786"}, ValueError, "cluster='tcp://127.0.0.1:8786' is only used with backend='dask'"),
    ({"backend": "dask", "timeout": 1.0}, ValueError, "timeout=1.0 is not supported with backend='dask'"),
])
def test_bad_arguments_are_named_before_any_run(kwargs, error, match):
    with pytest.raises(error, match=match):
        simulate(_never, np.zeros((4, 2)), **kwargs)


def test_unpicklable_simulator_is_named():
    lock = threading.Lock()

    def locked(theta, rng):
        with lock:
            return theta

    class Holder:
        def __init__(self):
            self.lock = threading.Lock()

        def __call__(self, theta, rng):
            return theta

    with pytest.raises(TypeError, match=r"simulator .*locked must be picklable .*n_jobs=2.*lock"):
        simulate(locked, np.zeros((4, 2)), n_jobs=2)
    with pytest.raises(TypeError, match=r"simulator .*Holder instance must be picklable .*'dask'"):
        simulate(Holder(), np.zeros((4, 2)), backend="dask", cluster="tcp://127.0.0.1:1")
    assert simulate(locked, np.zeros((4, 2))).n_failed == 0  # fine in this process


def test_timeout_in_this_process_fails_the_slow_chunk_and_goes_on():
    theta = np.linspace(0, 1, 40)[:, None].repeat(2, 1)  # θ_0 > 0.9: rows 36..39, the last chunk
    handler = signal.getsignal(signal.SIGALRM)
    t0 = time.perf_counter()
    sims = simulate(_Sleepy(above=0.9), theta, seed=3, chunk_size=10, timeout=0.5)
    assert time.perf_counter() - t0 < 10
    assert sims.failed.tolist() == [False] * 30 + [True] * 10
    assert sims.errors == {"timeout": 10} and "timeout=0.5 s" in sims.messages["timeout"]
    undisturbed = simulate(_Sleepy(above=np.inf), theta, seed=3, chunk_size=10)
    assert torch.equal(sims.x[:30], undisturbed.x[:30])
    assert signal.getsignal(signal.SIGALRM) is handler and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_timeout_in_this_process_needs_the_main_thread_and_a_free_alarm():
    errors = []
    thread = threading.Thread(target=lambda: errors.append(_raised(simulate, _never, np.zeros((4, 2)), timeout=1.0)))
    thread.start()
    thread.join()
    signal.setitimer(signal.ITIMER_REAL, 100.0)  # the caller's own timer, which we must not cancel
    try:
        errors.append(_raised(simulate, _never, np.zeros((4, 2)), timeout=1.0))
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 90
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    assert all(isinstance(e, ValueError) and "timeout=1.0 with n_jobs=1 times chunks with SIGALRM" in str(e)
               for e in errors) and len(errors) == 2


def _raised(f, *args, **kwargs) -> Exception | None:
    try:
        f(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - returned for the test to inspect
        return e
    return None


def test_timeout_kills_a_worker_that_ignores_signals():
    theta = np.linspace(0, 1, 40)[:, None].repeat(2, 1)  # θ_0 > 0.6: rows 24..39, the last two chunks
    t0 = time.perf_counter()
    sims = simulate(_Sleepy(above=0.6, deaf=True), theta, seed=3, chunk_size=10, timeout=1.0, n_jobs=2)
    assert time.perf_counter() - t0 < 20
    assert sims.failed.tolist() == [False] * 20 + [True] * 20
    assert sims.errors == {"timeout": 20} and "timeout=1.0 s" in sims.messages["timeout"]
    undisturbed = simulate(_Sleepy(above=np.inf), theta, seed=3, chunk_size=10)
    assert torch.equal(sims.x[:20], undisturbed.x[:20])


class _SleepsAndLogs:
    """θ + noise after sleeping θ_01 seconds (SIGALRM blocked, like a C call); logs each run
    as a file named by θ_01 and the worker's pid in ``log``."""

    def __init__(self, log: str):
        self.log = log

    def __call__(self, theta, rng):
        open(os.path.join(self.log, f"{theta[0, 1]}-{os.getpid()}"), "w").close()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(theta[0, 1])
        return theta + rng.normal(size=theta.shape)


class _AllStarted:
    """θ, once ``n`` chunks have started (one file each in ``folder``): run n chunks on n
    workers, and every worker has imported, so the next call's chunks start together."""

    def __init__(self, folder: str, n: int):
        self.folder, self.n = folder, n

    def __call__(self, theta, rng):
        open(os.path.join(self.folder, str(os.getpid())), "w").close()
        deadline = time.monotonic() + 60
        while len(os.listdir(self.folder)) < self.n and time.monotonic() < deadline:
            time.sleep(0.01)
        return theta


def test_a_timeout_reruns_the_chunk_that_was_running_beside_it(tmp_path):
    (tmp_path / "up").mkdir()
    (tmp_path / "runs").mkdir()
    simulate(_AllStarted(str(tmp_path / "up"), 2), np.zeros((2, 1)), chunk_size=1, n_jobs=2)
    # chunk 0 hangs; on the other worker chunk 1 takes 1 s, then chunk 2 (1.5 s) is running
    # when chunk 0's 2 s are up: the pool is killed, chunk 2 re-run on fresh workers, same stream
    theta = np.array([[0.0, 30.0]] * 2 + [[1.0, 1.0]] * 2 + [[2.0, 1.5]] * 2)
    sims = simulate(_SleepsAndLogs(str(tmp_path / "runs")), theta, seed=8, chunk_size=2, timeout=2.0, n_jobs=2)
    assert sims.failed.tolist() == [True, True, False, False, False, False] and sims.errors == {"timeout": 2}
    reference = simulate(lambda t, rng: t + rng.normal(size=t.shape), theta, seed=8, chunk_size=2)
    assert torch.equal(sims.x[2:], reference.x[2:])
    runs = Counter(name.split("-")[0] for name in os.listdir(tmp_path / "runs"))
    assert runs == {"30.0": 1, "1.0": 1, "1.5": 2}


def _pid(theta, rng):
    time.sleep(0.05)
    return np.full((len(theta), 1), float(os.getpid()))


def test_workers_are_reused_across_calls():
    pids = [set(simulate(_pid, np.zeros((8, 1)), chunk_size=1, n_jobs=2).x[:, 0].tolist()) for _ in range(3)]
    # the first call may finish before its second worker is up; after it, both serve every call
    assert len(pids[1]) == 2 and pids[2] == pids[1] and os.getpid() not in pids[1]


def test_calls_from_two_threads_take_turns_on_the_shared_workers(tmp_path):
    theta = np.linspace(0, 1, 20)[:, None].repeat(2, 1)
    other = np.stack([np.zeros(20), 0.3 + np.arange(20) // 2 * 1e-3], axis=1)  # 10 chunks of 0.3 s
    results = {}
    calls = {  # the first call's timeout kills the pool: the second's chunks must not be running there
        "late": lambda: simulate(_Sleepy(above=0.5, deaf=True), theta, seed=3, chunk_size=10, timeout=1.0, n_jobs=2),
        "other": lambda: simulate(_SleepsAndLogs(str(tmp_path)), other, seed=4, chunk_size=2, n_jobs=2),
    }
    threads = [threading.Thread(target=lambda k=k: results.update({k: calls[k]()})) for k in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["late"].errors == {"timeout": 10} and results["other"].errors == {}
    # the second call ran on one pool of 2 workers, not partly on one that the first call killed
    assert len(os.listdir(tmp_path)) == 10 and len({name.split("-")[1] for name in os.listdir(tmp_path)}) <= 2


def test_an_error_while_collecting_results_frees_the_workers_at_once():
    theta = np.linspace(-1, 1, 40)[:, None].repeat(2, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="row by row") as raised:
            simulate(_raises_on_negative, theta, seed=0, chunk_size=8, n_jobs=2)
    # the traceback (kept alive by ``raised``) holds the failed call's frame; the workers must not wait on it
    again = threading.Thread(target=simulate, args=(_raises_on_negative, np.ones((4, 2))), kwargs={"n_jobs": 2},
                             daemon=True)
    again.start()
    again.join(timeout=60)
    assert raised.tb is not None and not again.is_alive()


def test_a_killed_worker_is_retried(tmp_path):
    theta = np.linspace(0, 1, 30)[:, None].repeat(2, 1)
    killer = _KillsWorker(value=theta[15, 0], marker=str(tmp_path / "killed"))
    sims = simulate(killer, theta, seed=4, chunk_size=10, n_jobs=2)
    assert (tmp_path / "killed").exists()  # it did die once
    assert sims.n_failed == 0 and sims.errors == {}
    assert _same(sims, simulate(_KillsWorker(value=np.nan), theta, seed=4, chunk_size=10))


@pytest.mark.parametrize("workers", [{"backend": "processes"}, {"n_jobs": 2}])
def test_a_chunk_that_always_kills_its_worker_is_marked_failed(workers):
    theta = np.linspace(0, 1, 20)[:, None].repeat(2, 1)
    # with two workers, chunk 0 (1 s) is running when chunk 1 first kills the pool: a suspect
    # too, but re-run alone it is cleared, and only chunk 1 is charged its deaths
    killer = _KillsWorker(value=theta[15, 0], pause=1.0)
    sims = simulate(killer, theta, seed=4, chunk_size=10, **workers)
    assert sims.failed.tolist() == [False] * 10 + [True] * 10
    assert sims.errors == {"worker died": 10} and "died 3 times" in sims.messages["worker died"]
    assert torch.equal(sims.x[:10], simulate(_KillsWorker(value=np.nan), theta, seed=4, chunk_size=10).x[:10])


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    import dask

    # dask gives a chunk up (KilledWorker) at its first worker death: keeps the death test short
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0")
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


def _executed(client) -> int:
    return sum(client.run(lambda dask_worker: dask_worker.state.executed_count).values())


def test_dask_cluster_gives_the_local_result(lv_theta, dask_client):
    task, theta, local = lv_theta
    for cluster in (dask_client, dask_client.scheduler.address, None):
        before = _executed(dask_client)
        with dask_client.as_current() if cluster is None else contextlib.nullcontext():  # None: the default client
            sims = simulate(task.simulator, theta, seed=11, chunk_size=30, backend="dask", cluster=cluster)
        assert _same(local, sims) and _executed(dask_client) - before == 4  # 4 chunks, all on this cluster


def test_dask_chunk_that_kills_its_worker_is_marked_failed(dask_client):
    theta = np.linspace(0, 1, 20)[:, None].repeat(2, 1)
    sims = simulate(_KillsWorker(value=theta[15, 0]), theta, seed=4, chunk_size=10, backend="dask", cluster=dask_client)
    assert sims.failed.tolist() == [False] * 10 + [True] * 10
    assert sims.errors == {"worker died": 10} and "(KilledWorker)" in sims.messages["worker died"]
    assert torch.equal(sims.x[:10], simulate(_KillsWorker(value=np.nan), theta, seed=4, chunk_size=10).x[:10])


def test_joblib_dask_config_is_not_silently_ignored(dask_client):
    import joblib

    with dask_client.as_current(), joblib.parallel_config(backend="dask"):
        with pytest.warns(UserWarning, match=r"pass backend='dask'"):
            sims = simulate(_raises_on_negative, np.ones((4, 2)), seed=0)
    assert sims.n_failed == 0


def test_dask_without_a_client_starts_and_closes_a_local_cluster():
    distributed = pytest.importorskip("distributed")
    theta = np.linspace(0, 1, 20)[:, None].repeat(2, 1)
    sims = simulate(_raises_on_negative, theta, seed=6, chunk_size=5, backend="dask")
    assert _same(sims, simulate(_raises_on_negative, theta, seed=6, chunk_size=5))
    with pytest.raises(ValueError, match="No clients found"):
        distributed.default_client()


def test_dask_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'sbi-lite\[dask\]'"):
        simulate(_never, np.zeros((4, 2)), backend="dask")
