"""Reference posterior of the Nonlinear Gaussian task, from its exact likelihood.

Slice sampling (500 vectorised chains, started by importance resampling of 200,000 prior draws)
on log p(x0|θ) + log p(θ), then a random sign flip of θ3 and of θ4 for every draw: the likelihood
sees only θ3² and θ4², so the posterior is exactly symmetric under those flips, and the flips put
the right mass in all four modes whatever the chains did.

Run: ``.venv/bin/python benchmarks/ng_reference.py`` (writes
benchmarks/reference/nonlinear_gaussian_posterior.npy, 20,000 × 5 float32, and prints moments).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sbi_lite.samplers import SliceSampler
from simulators import get_task

OUT = Path(__file__).parent / "reference" / "nonlinear_gaussian_posterior.npy"


def reference_samples(n: int = 20_000, chains: int = 500, seed: int = 0, x0: np.ndarray | None = None) -> np.ndarray:
    """n posterior draws (n, 5) at x0 (8,) (None: the task's own x0)."""
    task = get_task("nonlinear_gaussian")
    prior = task.prior
    x0 = torch.as_tensor(task.x0 if x0 is None else x0, dtype=torch.float64)
    low, high = prior.low.double(), prior.high.double()

    def potential(theta: torch.Tensor) -> torch.Tensor:
        inside = ((theta >= low) & (theta <= high)).all(-1)
        return torch.where(inside, task.log_likelihood(theta, x0), -torch.inf)

    g = torch.Generator().manual_seed(seed)
    cand = (low + (high - low) * torch.rand(200_000, 5, generator=g, dtype=torch.float64))
    logw = potential(cand)
    init = cand[torch.multinomial(torch.softmax(logw, 0), chains, replacement=True, generator=g)]
    sampler = SliceSampler(potential, init, width=0.5, burn_in=500, seed=seed)
    draws = sampler.sample(n, thin=10)
    signs = torch.where(torch.rand(n, 2, generator=g) < 0.5, -1.0, 1.0).double()
    draws[:, 2:4] *= signs
    return draws.numpy().astype(np.float32)


def main() -> None:
    samples = reference_samples()
    OUT.parent.mkdir(exist_ok=True)
    np.save(OUT, samples)
    quadrants = [float(((np.sign(samples[:, 2]) == a) & (np.sign(samples[:, 3]) == b)).mean())
                 for a in (1, -1) for b in (1, -1)]
    print("mean", samples.mean(0).round(3), "\nsd  ", samples.std(0).round(3), "\n(θ3, θ4) quadrants", np.round(quadrants, 3))


if __name__ == "__main__":
    main()
