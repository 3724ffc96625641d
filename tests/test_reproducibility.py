"""Same seed, same result: for every method, in fresh processes, for any n_jobs, whatever the
global RNGs hold — and the global RNGs are left as they were."""

import json
import random
import subprocess
import sys

import numpy as np
import torch

SCRIPT = r"""
import hashlib, json, random, sys
import numpy as np, torch
from sbi_lite import BoxUniform, TrainConfig, infer

n_jobs, global_seed = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(global_seed); np.random.seed(global_seed); random.seed(global_seed)

def simulator(theta, rng):
    return theta + 0.3 * rng.standard_normal(theta.shape)

prior = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))
out = {}
for method in ("snpe", "sre", "snl"):
    post = infer(simulator, prior, [0.5, -0.5], method=method, rounds=2, simulations_per_round=200, num_atoms=10,
                 seed=7, n_jobs=n_jobs, progress=False, chains=40, train_config=TrainConfig(max_epochs=4))
    draws = post.sample(64, seed=3)
    history = post.history.drop(columns=[c for c in post.history if c.startswith("seconds")])
    out[method] = {"draws": hashlib.sha256(draws.numpy().tobytes()).hexdigest(), "history": history.to_json()}
print(json.dumps(out))
"""


def _run(n_jobs: int, global_seed: int) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(n_jobs), str(global_seed)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_same_seed_same_posterior_across_processes_and_workers():
    first = _run(1, global_seed=1)
    second = _run(1, global_seed=2)  # another process, other global seeds
    workers = _run(2, global_seed=3)  # two simulation workers
    for method in ("snpe", "sre", "snl"):
        assert second[method] == first[method], f"{method}: another process gave another result"
        assert workers[method] == first[method], f"{method}: n_jobs=2 gave another result"


def test_infer_leaves_the_global_rngs_alone():
    from sbi_lite import BoxUniform, TrainConfig, infer

    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    prior = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))
    for method in ("snpe", "sre", "snl"):
        post = infer(lambda t: t + 0.3 * torch.randn_like(t), prior, [0.5, -0.5], method=method, rounds=1,
                     simulations_per_round=100, seed=0, progress=False, chains=4,
                     train_config=TrainConfig(max_epochs=2))
        post.sample(8, seed=0)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]
