"""What one training step of the default SNPE-C estimator costs against its minibatch size: the
measurement behind the default preset's minibatches of 200 (benchmarks/results/snpe_causes.md,
row 10). Maximum-likelihood step of the default NSF (θ 5-D, x 8-D, the Nonlinear Gaussian's
shapes): forward, backward, gradient clipping and Adam, in process CPU seconds on one thread;
batch sizes interleaved over repetitions, medians reported.

    PYTHONPATH=. .venv/bin/python benchmarks/train_step.py [--reps 5] [--steps 40]

writes ``benchmarks/results/train_step.md``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _markdown import to_markdown  # noqa: E402
from sbi_lite.density.registry import build  # noqa: E402
from sbi_lite.train import TrainConfig, adam  # noqa: E402

BATCHES = (50, 100, 200, 400)


def step_seconds(batch: int, steps: int, net: nn.Module, opt: torch.optim.Optimizer, data) -> float:
    theta, x = data
    start = time.process_time()
    for i in range(steps):
        rows = slice((i * batch) % (len(theta) - batch), (i * batch) % (len(theta) - batch) + batch)
        loss = -net.log_prob(theta[rows], x[rows]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
    return (time.process_time() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    data = (torch.randn(4000, 5, generator=g), torch.randn(4000, 8, generator=g))
    net = build("nsf", 5, 8, seed=0)
    opt = adam(net, TrainConfig())
    step_seconds(100, 10, net, opt, data)  # warm-up
    rows = [{"batch": b, "rep": r, "ms_per_step": 1e3 * step_seconds(b, args.steps, net, opt, data)}
            for r in range(args.reps) for b in (BATCHES if r % 2 == 0 else BATCHES[::-1])]
    runs = pd.DataFrame(rows)
    table = runs.groupby("batch").ms_per_step.median().reset_index()
    per_step = table.set_index("batch").ms_per_step
    table["µs per row"] = 1e3 * table.ms_per_step / table.batch
    table["CPU per epoch vs batch 100"] = 100 * per_step.to_numpy() / table.batch / per_step[100]
    text = (f"# One maximum-likelihood step of the default NSF against the minibatch size\n\n"
            f"`PYTHONPATH=. .venv/bin/python benchmarks/train_step.py --reps {args.reps} --steps {args.steps}` "
            f"(torch {torch.__version__}, {platform.processor() or platform.machine()}, one thread; medians of "
            f"{args.reps} interleaved repetitions of {args.steps} steps, process CPU time; the machine's 2 cores "
            "were shared with other runs).\n\n" + to_markdown(table, ",.3g") + "\n\n"
            "A step is dominated by per-operation overhead (dozens of small tensor operations per spline in each "
            f"of the 5 coupling layers, forward and backward), not by rows: doubling the batch from 100 to 200 costs "
            f"{100 * (per_step[200] / per_step[100] - 1):.0f}% more per step, so an epoch costs "
            f"{per_step[200] / per_step[100] / 2:.2f}× as much. Twice the learning rate keeps the progress per epoch "
            "(snpe_causes.md, rows 7 and 10).\n")
    (ROOT / "benchmarks" / "results" / "train_step.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
