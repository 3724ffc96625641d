"""Does SNL's network or its sampler miss two moons' posterior mass?

The two-moons posterior is two crescents, mirror images under (θ1, θ2) -> (−θ2, −θ1), so each holds
half the mass exactly. For each observation this reruns a stored SNL configuration of two_moons.py
(same seed, so its C2ST reproduces the stored run's), then compares with the reference:
(a) the slice sampler's 10,000 final draws, (b) 10,000 draws from the trained network's own
posterior on the reference's 1,001² grid (no MCMC), and (c) each sample's share in the crescent with
θ1 + θ2 > 0. Where (b) is close to 0.5 and (a) is not, the sampler is what misses the mass.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/snl_modes.py --obs 1 4 --jobs 2``; writes
results/snl_modes.md.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from _markdown import to_markdown
from two_moons import CONFIGS, FINAL_DRAWS, ROUNDS, SIMULATIONS, grid_draws, grid_points, observation, simulate

OUT = Path(__file__).parent / "results" / "snl_modes.md"


def run(config: str, k: int, seed: int) -> dict:
    import torch

    from sbi_lite import BoxUniform, infer
    from sbi_lite.diagnostics import c2st

    torch.set_num_threads(1)
    x0, reference = observation(k)
    post = infer(simulate, BoxUniform(-torch.ones(2), torch.ones(2)), x0, rounds=ROUNDS,
                 simulations_per_round=SIMULATIONS, seed=seed, progress=False, **CONFIGS[config])
    mcmc = post.sample(FINAL_DRAWS, seed=seed + 1000).numpy()
    health = post.last_health()
    grid = torch.as_tensor(grid_points(), dtype=torch.float32)
    with torch.no_grad():
        log_p = torch.cat([post.potential(g) for g in grid.split(20_000)]).double().numpy()
    network = grid_draws(log_p, np.random.default_rng(7))

    def score(a, b):
        return c2st(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32), seed=seed)

    def share(a):
        return float((a[:, 0] + a[:, 1] > 0).mean())

    return {"config": config, "observation": k, "seed": seed, "C2ST sampler": score(mcmc, reference),
            "C2ST network (grid)": score(network, reference), "C2ST sampler vs network": score(mcmc, network),
            "share θ1+θ2>0 reference": share(reference), "share sampler": share(mcmc),
            "share network": share(network), "final R-hat": health.rhat, "final ESS": health.ess}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="snl_peer8", choices=sorted(CONFIGS))
    parser.add_argument("--obs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(run, [args.config] * len(args.obs), args.obs, [args.seed] * len(args.obs)))
    import pandas as pd

    table = to_markdown(pd.DataFrame(rows).round(4))
    OUT.write_text(f"# SNL on two moons: the network's posterior against the sampler's draws\n\n"
                   f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/snl_modes.py --config {args.config} "
                   f"--obs {' '.join(map(str, args.obs))} --seed {args.seed}` ({__doc__.splitlines()[0]} "
                   f"See the script's docstring.)\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
