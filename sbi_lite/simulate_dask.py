"""Running the chunks of ``simulate`` on a dask.distributed cluster (optional: ``sbi-lite[dask]``)."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from sbi_lite.simulate_backends import ChunkResult, Job, failed_chunk

__all__ = ["check_cluster", "dask_client", "run_dask"]


def _import_distributed() -> Any:
    """The ``distributed`` module, or an ImportError that says how to install it."""
    try:
        import distributed
    except ImportError as e:
        raise ImportError("backend='dask' needs dask.distributed: pip install 'sbi-lite[dask]'") from e
    return distributed


def check_cluster(cluster: Any) -> None:
    """Raise before any run if dask is missing or ``cluster`` is not something ``run_dask`` takes."""
    distributed = _import_distributed()
    if cluster is not None and not isinstance(cluster, (str, distributed.Client)):
        raise TypeError(f"cluster must be a scheduler address, a distributed.Client or None, got cluster={cluster!r}")


@contextmanager
def dask_client(cluster: Any, n_workers: int) -> Iterator[Any]:
    """The ``distributed.Client`` for ``cluster`` (a Client, an address, or None: the default
    client, else a ``LocalCluster`` of ``n_workers`` that lives as long as the context)."""
    distributed = _import_distributed()
    if isinstance(cluster, distributed.Client):
        yield cluster
        return
    if isinstance(cluster, str):
        with distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.default_client()
    except ValueError:  # no client in this process: a cluster for this call only
        client = None
    if client is not None:
        yield client
        return
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as local, distributed.Client(local) as client:
        yield client


def run_dask(runner: Callable, jobs: list[Job], cluster: Any, n_workers: int) -> Iterator[tuple[int, ChunkResult]]:
    """Chunks as dask futures: ``cluster`` is a scheduler address, a ``distributed.Client``, or
    None for the current default client (else a ``LocalCluster`` of ``n_workers`` for this call).

    We submit one future per chunk instead of going through joblib's dask backend, which needs a
    client registered in a global joblib config and ends the whole call on one lost worker. Here
    each chunk stands alone: dask itself re-runs a chunk whose worker died, and once it gives up
    (``KilledWorker``) only that chunk's rows are marked "worker died".
    """
    distributed = _import_distributed()
    with dask_client(cluster, n_workers) as client:
        call = uuid.uuid4().hex  # readable, unique task names on the dashboard
        futures = {client.submit(runner, theta, ss, key=f"simulate-chunk-{i}-{call}"): i
                   for i, (theta, ss) in enumerate(jobs)}
        try:
            for future in distributed.as_completed(futures, loop=client.loop):  # not the default client
                i = futures[future]
                try:
                    result = future.result()
                except distributed.KilledWorker as e:
                    result = failed_chunk(len(jobs[i][0]), "worker died", f"dask gave the chunk up (KilledWorker): {e}")
                yield i, result
        finally:
            client.cancel(list(futures))
