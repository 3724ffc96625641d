"""``infer(..., backend="dask")`` runs its simulations on a real dask cluster and gives the
local run's posterior bit for bit."""

import pytest
import torch

from sbi_lite import BoxUniform, TrainConfig, infer

PRIOR = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))


def simulator(theta, rng):
    return theta + 0.5 * rng.standard_normal(theta.shape)


def run(**kw):
    return infer(simulator, PRIOR, [0.5, -0.5], rounds=2, simulations_per_round=300, num_atoms=10, seed=5,
                 progress=False, train_config=TrainConfig(max_epochs=3), **kw)


def executed(client) -> int:
    return sum(client.run(lambda dask_worker: dask_worker.state.executed_count).values())


def test_infer_on_a_dask_cluster_equals_the_local_run():
    distributed = pytest.importorskip("distributed")
    local = run().sample(100, seed=0)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        on_client = run(backend="dask", cluster=client)
        assert executed(client) == 3  # the probe and one chunk per round, all on this cluster
        by_address = run(backend="dask", cluster=cluster.scheduler_address)
        assert executed(client) == 6
    assert torch.equal(on_client.sample(100, seed=0), local)
    assert torch.equal(by_address.sample(100, seed=0), local)
    with pytest.raises(ValueError, match=r"simulation_timeout|timeout=5 is not supported with backend='dask'"):
        run(backend="dask", simulation_timeout=5)
