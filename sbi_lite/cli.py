"""The ``sbi-lite`` command: a thin layer over the public API."""

from __future__ import annotations

import argparse
import sys

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sbi-lite", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate-demo", help="Lotka–Volterra prior simulations in parallel")
    sim.add_argument("--simulations", type=int, default=10_000)
    sim.add_argument("--n-jobs", type=int, default=-1)
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(run=_demo_simulate)
    demo = sub.add_parser("demo", help="the README's main job")
    demo.add_argument("--simulations", type=int, default=10_000)
    demo.add_argument("--n-jobs", type=int, default=-1)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo_simulate)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
