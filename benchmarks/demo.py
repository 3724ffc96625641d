"""The README's main job: a real inference on an embedded task, a summary and a pairplot.

Run: ``.venv/bin/python benchmarks/demo.py [--task ...] [--method ...]`` (``make demo``)."""

from __future__ import annotations

import argparse
import sys

import torch

__all__ = ["main"]


def _demo_simulate(args: argparse.Namespace) -> None:
    import torch

    from sbi_lite import simulate
    from simulators import get_task

    task = get_task("lotka_volterra")
    theta = task.prior.sample((args.simulations,), generator=torch.Generator().manual_seed(args.seed))
    sims = simulate(task.simulator, theta, seed=args.seed, n_jobs=args.n_jobs, progress=True)
    print(f"{len(theta)} Lotka–Volterra prior simulations in {sims.seconds:.1f} s "
          f"({len(theta) / sims.seconds:,.0f} sims/s, n_jobs={args.n_jobs}); "
          f"failed: {sims.n_failed} ({sims.failure_fraction:.1%}) {sims.errors}")


def _demo_infer(args: argparse.Namespace) -> None:
    import time

    from sbi_lite import infer
    from sbi_lite.plot import pairplot
    from simulators import get_task

    task = get_task(args.task)
    t0 = time.perf_counter()
    posterior = infer(task.simulator, task.prior, task.x0, method=args.method, rounds=args.rounds,
                      simulations_per_round=args.simulations, num_atoms=args.num_atoms, seed=args.seed,
                      n_jobs=args.n_jobs)
    samples = posterior.sample(10_000, seed=args.seed)
    history = posterior.history
    print(f"\n{args.method.upper()} on {args.task}: {args.rounds} rounds x {args.simulations} simulations "
          f"in {time.perf_counter() - t0:.0f} s")
    print(history[["round", "proposal", "simulations", "failed", "epochs", "best_validation_loss", "acceptance_rate", "seconds_propose",
                   "seconds_simulate", "seconds_train"]].to_string(index=False, float_format="%.3f"))
    print("\nposterior (10,000 draws):")
    for i, (m, s, q05, q95) in enumerate(zip(samples.mean(0), samples.std(0), samples.quantile(0.05, 0),
                                              samples.quantile(0.95, 0))):
        print(f"  θ{i + 1}: mean {m:+.3f}  sd {s:.3f}  90% [{q05:+.3f}, {q95:+.3f}]  θ* {task.theta_true[i]:+.3f}")
    lp_true = posterior.log_prob(torch.as_tensor(task.theta_true[None], dtype=torch.float32))
    print(f"log posterior density at θ*: {float(lp_true[0]):.2f} (prior: {float(task.prior.log_prob(torch.as_tensor(task.theta_true, dtype=torch.float32))):.2f})")
    bounds = task.prior.bounds
    limits = list(zip(bounds[0].tolist(), bounds[1].tolist())) if bounds is not None else None
    pairplot(samples, truth=task.theta_true, limits=limits, path=args.out)
    print(f"pairplot written to {args.out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate-demo", help="Lotka–Volterra prior simulations in parallel")
    sim.add_argument("--simulations", type=int, default=10_000)
    sim.add_argument("--n-jobs", type=int, default=-1)
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(run=_demo_simulate)
    demo = sub.add_parser("demo", help="the README's main job: SNPE-C on the Nonlinear Gaussian")
    demo.add_argument("--task", default="nonlinear_gaussian")
    demo.add_argument("--method", default="snpe", choices=["snpe", "sre", "snl"])
    demo.add_argument("--rounds", type=int, default=3)
    demo.add_argument("--num-atoms", type=int, default=10)
    demo.add_argument("--simulations", type=int, default=1000)
    demo.add_argument("--n-jobs", type=int, default=1)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="posterior_pairplot.png")
    demo.set_defaults(run=_demo_infer)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
