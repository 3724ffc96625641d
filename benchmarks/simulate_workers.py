"""Wall time of 5 consecutive ``simulate(..., n_jobs=2)`` calls on 1,000 Lotka–Volterra prior draws.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simulate_workers.py`` (prints seconds; the
results and how they were taken are in benchmarks/results/simulate_workers.md). The first call
pays the worker start-up; the next four show whether workers are reused.
"""

from __future__ import annotations

import time

import torch

from sbi_lite import simulate
from simulators import get_task

torch.set_num_threads(1)


def main() -> None:
    task = get_task("lotka_volterra")
    theta = task.prior.sample((1000,), generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    for s in range(5):
        simulate(task.simulator, theta, seed=s, n_jobs=2)
    print(f"{time.perf_counter() - t0:.2f}")


if __name__ == "__main__":
    main()
