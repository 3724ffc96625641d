"""The tiny diffusion SNPE cell (Nonlinear Gaussian, 2 rounds × 500 simulations): wall time, the
round-2 proposal's time, and what its ODE solves cost.

Run (one thread; ``PYTHONPATH`` picks the tree measured):
``PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diffusion_proposal.py --seeds 0 1 2 3 4``

Prints one markdown row per seed. The ODE solves are counted by wrapping the solver the estimator
calls (it reads either the old return value, a count of batched calls, or ``RK45Stats``): "ODE
rows" is the rows solved (draws of q, kept or not), "row evaluations" the network evaluations
summed over rows. Round 2 proposes from the prior cut to the box of 10,000 draws of q(θ|x0)
inside the prior's support, drawn by rejection: its cost is ODE rows × evaluations per row.
"""

from __future__ import annotations

import argparse
import time

import torch


def run(seed: int) -> dict:
    import sbi_lite.density.score.estimator as estimator
    from sbi_lite import infer
    from simulators import get_task

    solves = []
    solve = estimator.solve_rk45

    def counted(fn, y0, t0, t1, **kw):
        out, stats = solve(fn, y0, t0, t1, **kw)
        calls = stats if isinstance(stats, int) else stats.calls
        rows = stats * len(y0) if isinstance(stats, int) else stats.row_evaluations
        solves.append((len(y0), calls, rows))
        return out, stats

    estimator.solve_rk45 = counted
    try:
        task = get_task("nonlinear_gaussian")
        t0 = time.perf_counter()
        post = infer(task.simulator, task.prior, task.x0, method="snpe", estimator="diffusion", rounds=2,
                     simulations_per_round=500, seed=seed, progress=False)
        wall = time.perf_counter() - t0
    finally:
        estimator.solve_rk45 = solve
    h = post.history
    return {"seed": seed, "wall_s": wall, "propose_s": float(h["seconds_propose"].iloc[1]),
            "acceptance": float(h["acceptance_rate"].iloc[1]), "ode_rows": sum(s[0] for s in solves),
            "calls": sum(s[1] for s in solves), "row_evals": sum(s[2] for s in solves)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("| seed | wall s | round-2 propose s | acceptance | ODE rows | batched calls | row evaluations | evaluations / row |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        r = run(seed)
        print(f"| {r['seed']} | {r['wall_s']:.1f} | {r['propose_s']:.1f} | {r['acceptance']:.3f} | {r['ode_rows']:,} | "
              f"{r['calls']:,} | {r['row_evals']:,} | {r['row_evals'] / r['ode_rows']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
