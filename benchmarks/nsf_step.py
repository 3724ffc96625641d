"""The neural spline flow's costs, a git ref's code against this tree: ``train`` on the Nonlinear
Gaussian's shapes (θ 5-D, x 8-D) at the SNPE-C settings that were the default until
snpe_causes.md row 27 (maximum likelihood, minibatches of 200 at 1e-3), and ``log_prob`` and
``sample`` without gradients.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nsf_step.py --before <ref> [--reps 7]

writes ``results/nsf_step.md``. A second table times one coupling layer of this tree, forward and
backward, with its two halves' splines in one call and in two, against the number of rows: the
measurement behind ``sbi_lite.density.layers._ONE_CALL_ROWS``. Both versions run in one process on the same weights (the same
seed builds both; checked equal) and the same data, alternated in every repetition (process CPU
time, one thread); the table gives medians. Before timing, both versions' log-densities on the
same rows are checked to agree to 1e-5 (forward values are bitwise equal unless the arithmetic
changed) and their gradients to 1e-5 of the largest.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _markdown import to_markdown  # noqa: E402
from contrastive_step import export, values_and_gradients  # noqa: E402
from sbi_lite.density import layers  # noqa: E402
from sbi_lite.density.registry import build  # noqa: E402

D, C, N = 5, 8, 2000
CASES = [("nsf", {}), ("nsf (box-supported)", {"bounds": (-3 * torch.ones(D), 3 * torch.ones(D))})]


class Version:
    def __init__(self, pkg: str, opts: dict):
        registry = importlib.import_module(f"{pkg}.density.registry")
        self.train_mod = importlib.import_module(f"{pkg}.train")
        self.net = registry.build("nsf", D, C, seed=0, **opts)
        self.opts = opts

    def train_seconds(self, theta, x) -> float:
        config = self.train_mod.TrainConfig(batch_size=200, learning_rate=1e-3, max_epochs=1, patience=100)
        start = time.process_time()
        self.train_mod.train(self.net, lambda t, c: -self.net.log_prob(t, c), (theta, x), config=config, seed=0)
        return time.process_time() - start

    def timed(self, fn) -> float:
        start = time.process_time()
        with torch.no_grad():
            fn(self.net)
        return time.process_time() - start


def check_same(old: Version, new: Version, theta, x) -> dict:
    (before, after), grad_diff = values_and_gradients((old, new), lambda v: v.net.log_prob(theta, x))
    value_diff = float((before - after).abs().max())
    assert value_diff < 1e-5 and grad_diff < 1e-5, (value_diff, grad_diff)
    return {"max log_prob diff": value_diff, "max grad diff / max grad": grad_diff}


def coupling_paths(reps: int) -> pd.DataFrame:
    """ms for one forward and backward of the default NSF's first coupling layer, each path forced."""
    net = build("nsf", D, C, seed=0)
    layer = next(t for t in net.transform.transforms if isinstance(t, layers.Coupling))
    kept, out = layers._ONE_CALL_ROWS, []
    g = torch.Generator().manual_seed(1)
    try:
        for rows in (200, 500, 1000, 2000, 10000):
            y, c = torch.randn(rows, D, generator=g), torch.randn(rows, C, generator=g)
            times = {"one call": [], "two calls": []}
            for r in range(reps):
                for path in (times if r % 2 == 0 else list(times)[::-1]):
                    layers._ONE_CALL_ROWS = 10**12 if path == "one call" else 0
                    start = time.process_time()
                    for _ in range(10):
                        u, logdet = layer(y, c)
                        (u.sum() + logdet.sum()).backward()
                    times[path].append(100 * (time.process_time() - start))
            out.append({"rows": rows, **{f"{p}, ms": np.median(t) for p, t in times.items()}})
    finally:
        layers._ONE_CALL_ROWS = kept
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git ref of the 'before' code")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "nsf_step.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="nsf_step_"))
    commit = export(args.before, tmp)
    sys.path.insert(0, str(tmp))
    here = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "sbi_lite"], cwd=ROOT, capture_output=True, text=True).stdout
    g = torch.Generator().manual_seed(0)
    theta, x = 2 * torch.rand(N, D, generator=g) - 1, torch.randn(N, C, generator=g)
    measures = {
        "train, one epoch of 1,800 pairs (9 steps of 200), s": lambda v: v.train_seconds(theta, x),
        "log_prob, 200 rows, ms": lambda v: 1e3 * v.timed(lambda net: [net.log_prob(theta[:200], x[:200]) for _ in range(20)]) / 20,
        "log_prob, 2,000 rows, ms": lambda v: 1e3 * v.timed(lambda net: [net.log_prob(theta, x) for _ in range(5)]) / 5,
        "sample 200 (one context), ms": lambda v: 1e3 * v.timed(lambda net: [net.sample(200, x[0]) for _ in range(20)]) / 20,
    }
    rows = []
    for label, opts in CASES:
        old, new = Version("sbi_lite_before", opts), Version("sbi_lite", opts)
        same = check_same(old, new, theta[:200], x[:200])  # the coupling's one-call path
        check_same(old, new, theta, x)  # and its two-call path (more than 1,024 rows)
        times = {(name, v): [] for name in measures for v in ("before", "after")}
        for r in range(args.reps):
            for name, fn in measures.items():
                for tag, v in (("before", old), ("after", new)) if r % 2 == 0 else (("after", new), ("before", old)):
                    times[(name, tag)].append(fn(v))
        for name in measures:
            before, after = np.median(times[(name, "before")]), np.median(times[(name, "after")])
            rows.append({"flow": label, "measure": name, "before": before, "after": after,
                         "speed-up": before / after, **same})
        print(rows[-4:], flush=True)
    text = (f"# The neural spline flow's step, density and sampling: before and after\n\n"
            f"Command: `PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nsf_step.py --before {args.before} "
            f"--reps {args.reps}`\n\n"
            f"before = `{args.before}` ({commit[:7]}), after = this tree ({here}{'-dirty' if dirty else ''}); "
            f"torch {torch.__version__}, one thread, {platform.processor() or platform.machine()}; process CPU "
            f"time, medians of {args.reps} alternated repetitions on a shared 2-core machine. Shapes of the "
            f"Nonlinear Gaussian (θ {D}-D, x {C}-D), the default NSF; `train` at the SNPE-C settings that "
            f"were the default until snpe_causes.md row 27 (minibatches of 200 at 1e-3). Both versions' "
            f"log-densities and gradients on the same 200 rows "
            f"agree (columns at the right), and so do they on 2,000 rows.\n\n" + to_markdown(pd.DataFrame(rows), ".4g") + "\n\n"
            f"## One coupling layer, both halves in one spline call or in two (this tree)\n\n"
            f"Forward and backward of the default NSF's first coupling layer, medians of {args.reps} alternated "
            f"repetitions of 10; `sbi_lite.density.layers._ONE_CALL_ROWS` = {layers._ONE_CALL_ROWS} picks the path.\n\n"
            + to_markdown(coupling_paths(args.reps), ".4g") + "\n")
    Path(args.out).write_text(text)
    shutil.rmtree(tmp, ignore_errors=True)
    print(text)


if __name__ == "__main__":
    main()
