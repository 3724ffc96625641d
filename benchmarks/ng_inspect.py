"""What one Nonlinear-Gaussian run gets wrong: rerun a configuration of ``ng_accuracy.py`` on one
observation and seed, and compare its 10,000 final draws with the exact reference, coordinate by
coordinate: the share of each of the four sign modes (θ3, θ4 → −θ3, −θ4 leave the likelihood
unchanged), means and standard deviations, and the C2ST with the signs of θ3 and θ4 folded away
(a mode missed or misweighted shows in the first; a posterior too wide or shifted in the rest).

    PYTHONPATH=. .venv/bin/python benchmarks/ng_inspect.py --obs 2 --seed 2 [--config ours_snpe]

Prints the comparison and the run's history (one torch thread). The runs behind
``results/snpe_causes.md``'s section on the spread between seeds.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

import ng_accuracy as ng
from sbi_lite.diagnostics import c2st

HISTORY = ["round", "proposal", "epochs", "best_validation_loss", "acceptance_rate", "posterior_change",
           "seconds_train"]


def mode_shares(theta: np.ndarray) -> np.ndarray:
    """(n, 5) -> shares of the four sign modes, ordered (θ3 < 0, θ4 < 0), (<, >), (>, <), (>, >)."""
    return np.bincount(2 * (theta[:, 2] > 0) + (theta[:, 3] > 0), minlength=4) / len(theta)


def folded(theta: np.ndarray) -> torch.Tensor:
    out = np.array(theta, dtype=np.float32)
    out[:, 2:4] = np.abs(out[:, 2:4])
    return torch.as_tensor(out)


def compare(draws: np.ndarray, reference: np.ndarray, seed: int) -> pd.DataFrame:
    """Per coordinate: mean and sd of the draws and the reference; with the C2STs and mode shares."""
    table = pd.DataFrame({"mean": draws.mean(0), "ref mean": reference.mean(0), "sd": draws.std(0),
                          "ref sd": reference.std(0)}, index=[f"θ{i + 1}" for i in range(draws.shape[1])])
    table.attrs = {"c2st": c2st(torch.as_tensor(draws, dtype=torch.float32), torch.as_tensor(reference), seed=seed),
                   "c2st_folded": c2st(folded(draws), folded(reference), seed=seed),
                   "modes": mode_shares(draws), "ref_modes": mode_shares(reference)}
    return table


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--obs", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--config", default="ours_snpe", choices=sorted(ng.OURS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    x0, reference = ng._observation(args.obs)
    post, draws = ng.run_ours_posterior(args.config, x0, args.seed)
    draws = draws.numpy()
    table = compare(draws, reference, args.seed)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"{args.config}, observation {args.obs}, seed {args.seed}: C2ST {table.attrs['c2st']:.3f}, "
              f"signs of θ3, θ4 folded {table.attrs['c2st_folded']:.3f}")
        print(f"mode shares {table.attrs['modes'].round(3)} (reference {table.attrs['ref_modes'].round(3)})")
        print(table.round(3))
        print(post.history[[c for c in HISTORY if c in post.history.columns]])
    return table


if __name__ == "__main__":
    main()
