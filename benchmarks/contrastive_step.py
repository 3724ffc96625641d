"""One contrastive training step at K = 100, B = 100: the code on ``main`` against this tree.

Run: ``PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/contrastive_step.py [--before main]``
(writes results/contrastive_step.md).

A step is what ``train`` does per minibatch: the method's loss (``Method.loss`` of round 2, so
the atomic/contrastive one), ``zero_grad``, ``backward``, the method's gradient clipping, and
the optimiser's step (``train.adam`` here; on ``main`` the single-tensor Adam it built). Cases,
on the Nonlinear Gaussian's dimensions (θ 5-D, x 8-D), each network built the way ``infer``
builds it (``Method.build`` with the method's default estimator kwargs, ``Method.standardize`` on
round-1 data, ``Method.train_config``):

- (a) SNPE-C with the "paper" preset's MAF; (b) SNPE-C with the default NSF; (c) SRE's classifier.

"before" is ``--before`` (a git ref) exported by ``git archive`` to a temporary folder and
imported as ``sbi_lite_before``, so both versions run in one process, on the same weights (the
same seed builds both; checked equal) and the same minibatches. Each repetition times one
"before" step then one "after" step (process CPU time, one thread); the table gives medians.
Before timing, the loss VALUE of both versions on the same minibatch, atoms and weights is
checked to agree to 1e-5 (relative), and so are the gradients (the largest difference over the
largest gradient entry, over all parameters). A torch.profiler summary (top ops by self CPU time per step) of each
version follows the table.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from _markdown import to_markdown  # noqa: E402

from simulators import nonlinear_gaussian  # noqa: E402

torch.set_num_threads(1)
K = B = 100
# Measured separately while choosing the levers (one thread, medians, N = B·K = 10,000 rows), on
# the same shared machine; kept here so the table's numbers come with what they were chosen from.
NOTES = """\
## Levers measured separately (microbenchmarks, same machine, one thread)

| lever | measured | taken |
|---|---|---|
| each x's share once (context layers of every MADE / ResidualNet gates / SRE's first layer on B rows, broadcast) | MAF forward+backward 68.6 -> 50.5 ms | yes (`broadcast=True`) |
| narrow products transposed (`tall_linear`) | (N,50)@(50,5) 0.69 -> 0.13 ms; (50,N)@(N,5) 0.79 -> 0.15; (N,50)@(50,10) 0.53 -> 0.17; (64,N)@(N,3) 1.03 -> 0.16; 50x50 unchanged | yes, broadcast path |
| biases added on the B context rows, not the B·K pair rows (no addmm bias copy) | with the line above: MAF forward+backward 50.5 -> 44.2 ms | yes, broadcast path |
| `fast_tanh` = 2σ(2x) − 1 (torch.tanh: 1.27 ms per 500,000 floats, sigmoid 0.20) | forward+backward 1.42 -> 0.69 ms per (B,K,50) tensor, 10 per step; abs. error < 2e-7 | yes, MADE broadcast path |
| Coupling's free half: spline knots once from the shared (D, P) parameters | forward+backward per layer 9.8 -> 4.5 ms | yes (all paths) |
| spline parameters by `split` instead of three slices (one gradient cat, not three zero-filled copies) | part of the above | yes |
| Adam `foreach=True` (bitwise the same updates) | MAF 60 tensors 1.60 -> 1.02 ms (with clipping); NSF 2.97 -> 1.89; SRE 0.41 -> 0.33 | yes |
| Adam `fused=True` | MAF 0.47 ms, NSF 0.88, SRE 0.18; NOT bitwise (2e-8) | no: 0.5-1 ms more is within noise, and every trained number would move |
| `clip_grad_norm_(foreach=True)` | 0.37 -> 0.36 ms | no (already batched) |
| θ's share of the first layer on B rows, then a gather | gather of (10,000, 50) 0.33 ms vs the (10,000x5)@(5x50) product it replaces 0.14 ms | no: does not pay |
| `torch.compile` (inductor) of the MAF score, fast path | forward+backward 54.0 -> 32.6 ms (1.66x, interleaved); compile 58 s cold, 16 s with a warm cache; recompiles for each new (B, K) and for no-grad validation | no: not quick to compile; would need shape bucketing to be an opt-in |
| malloc without mmap/trim (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`) | 71 -> 69 ms (noise) | no |
"""
CASES = [("a", "SNPE-C, paper preset (MAF)", "snpe", "maf"), ("b", "SNPE-C, default NSF", "snpe", "nsf"),
         ("c", "SRE classifier", "sre", None)]


def export(ref: str, into: Path) -> str:
    """``ref``'s sbi_lite as the package ``sbi_lite_before`` under ``into``; returns its commit."""
    commit = subprocess.run(["git", "rev-parse", ref], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    blob = subprocess.run(["git", "archive", commit, "sbi_lite"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    (into / "sbi_lite").rename(into / "sbi_lite_before")
    for path in (into / "sbi_lite_before").rglob("*.py"):
        path.write_text(re.sub(r"\bsbi_lite\b", "sbi_lite_before", path.read_text()))
    return commit


class Version:
    """One version of the library: the network, loss and optimiser of one case, and its step."""

    def __init__(self, pkg: str, method: str, estimator: str | None, prior, theta, x, *, plain_loss: bool = False,
                 plain_adam: bool = False):
        methods = importlib.import_module(f"{pkg}.inference.methods")
        train = importlib.import_module(f"{pkg}.train")
        m = methods.METHODS[method]
        self.net = m.build(prior, x.shape[1], estimator, 0, {})
        m.standardize(self.net, prior, theta, x)
        self.config = m.train_config(self.net)
        self.loss_fn = m.loss(self.net, prior, round_index=1, num_atoms=K)
        if plain_loss:  # lever ablation: this tree's networks, scored on B·K rows of θ and of x
            losses = importlib.import_module(f"{pkg}.losses")
            net = self.net
            score = net.log_ratio if method == "sre" else (lambda t, c: net.log_prob(t, c) - prior.log_prob(t))
            self.loss_fn = lambda t, c: losses.contrastive_loss(score, t, c, K, broadcast=False)
        if hasattr(train, "adam") and not plain_adam:
            self.optimizer = train.adam(self.net, self.config)
        else:  # what train() built before train.adam existed
            self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.config.learning_rate,
                                              weight_decay=self.config.weight_decay)

    def loss(self, theta, x, seed: int) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):  # the same atoms for both versions
            torch.manual_seed(seed)
            return self.loss_fn(theta, x).mean()

    def step(self, theta, x, seed: int) -> None:
        loss = self.loss(theta, x, seed)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.config.clip_grad_norm)
        self.optimizer.step()


def values_and_gradients(versions, evaluate) -> tuple[list[torch.Tensor], float]:
    """Checks that the versions' networks hold the same weights, then evaluates ``evaluate(version)``
    (a tensor) with each and backpropagates its sum: the values, and the largest gradient
    difference over the largest gradient entry."""
    first, second = (v.net.state_dict() for v in versions)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    values, grads = [], []
    for v in versions:
        v.net.zero_grad(set_to_none=True)
        out = evaluate(v)
        out.sum().backward()
        values.append(out.detach())
        grads.append([p.grad.clone() for p in v.net.parameters()])
        v.net.zero_grad(set_to_none=True)
    scale = max(float(g.abs().max()) for g in grads[0])
    return values, max(float((g0 - g1).abs().max()) for g0, g1 in zip(*grads)) / scale


def check_same(old: Version, new: Version, theta, x) -> dict:
    """Same weights; the loss value and gradients on one minibatch agree."""
    (before, after), grad_rel = values_and_gradients((old, new), lambda v: v.loss(theta, x, seed=123))
    values = [float(before), float(after)]
    rel = abs(values[1] - values[0]) / abs(values[0])
    assert rel < 1e-5, f"loss values differ: {values}"
    assert grad_rel < 1e-5, f"gradients differ: {grad_rel}"
    return {"loss before": values[0], "loss after": values[1], "loss rel. diff": rel,
            "max grad diff / max grad": grad_rel}


def profile_top(version: Version, batches, steps: int = 3, rows: int = 12) -> str:
    from torch.profiler import profile

    version.step(*batches[0], seed=0)
    with profile(record_shapes=True) as prof:
        for s in range(steps):
            version.step(*batches[s % len(batches)], seed=s)
    events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in prof.key_averages()) / steps / 1e3
    table = pd.DataFrame([{"op": e.key, "input shapes": str(e.input_shapes)[:70].replace("|", "/"),
                           "calls/step": e.count // steps, "self ms/step": e.self_cpu_time_total / steps / 1e3}
                          for e in events[:rows]])
    return f"profiled self CPU total {total:.1f} ms/step (profiler overhead included)\n\n" + to_markdown(table, ".3g")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="git ref of the 'before' code")
    parser.add_argument("--reps", type=int, default=30, help="timed steps per version (NSF: a third)")
    parser.add_argument("--cases", default="abc", help="which of the cases a, b, c to run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "contrastive_step.md"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="contrastive_step_"))
    commit = export(args.before, tmp)
    sys.path.insert(0, str(tmp))
    here = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    task = nonlinear_gaussian.task()
    gen = torch.Generator().manual_seed(0)
    theta = task.prior.sample((1000,), generator=gen)
    x = torch.as_tensor(task.simulator(theta.numpy(), np.random.default_rng(0)), dtype=torch.float32)
    order = torch.randperm(1000, generator=gen)
    batches = [(theta[order[i:i + B]], x[order[i:i + B]]) for i in range(0, 1000, B)]

    rows, ablations, profiles = [], [], []
    for key, label, method, estimator in [c for c in CASES if c[0] in args.cases]:
        old = Version("sbi_lite_before", method, estimator, task.prior, theta, x)
        new = Version("sbi_lite", method, estimator, task.prior, theta, x)
        same = check_same(old, new, *batches[0])
        versions = {"before": old, "after": new,  # and two ablations of "after", one lever off each
                    "after, per-pair loss": Version("sbi_lite", method, estimator, task.prior, theta, x, plain_loss=True),
                    "after, single-tensor Adam": Version("sbi_lite", method, estimator, task.prior, theta, x,
                                                         plain_adam=True)}
        reps = args.reps // 3 if estimator == "nsf" else args.reps
        times = {name: [] for name in versions}
        for v in versions.values():  # warm-up
            for s in range(3):
                v.step(*batches[s], seed=s)
        for r in range(reps):  # interleaved: the neighbours' load falls on all alike
            for name, v in versions.items():
                t0 = time.process_time()
                v.step(*batches[r % len(batches)], seed=1000 + r)
                times[name].append(time.process_time() - t0)
        ms = {name: 1e3 * float(np.median(t)) for name, t in times.items()}
        rows.append({"case": f"({key}) {label}", "before ms/step": ms["before"], "after ms/step": ms["after"],
                     "speed-up": ms["before"] / ms["after"], "steps timed": reps, **same})
        ablations.append({"case": f"({key}) {label}", **{f"{n} ms": t for n, t in ms.items()},
                          "fast path saves ms": ms["after, per-pair loss"] - ms["after"],
                          "foreach Adam saves ms": ms["after, single-tensor Adam"] - ms["after"]})
        print(rows[-1], ablations[-1], flush=True)
        profiles.append(f"### ({key}) {label}\n\nbefore ({commit[:7]}): {profile_top(old, batches)}\n\n"
                        f"after ({here}): {profile_top(new, batches)}\n")

    table = pd.DataFrame(rows)
    text = (f"# One contrastive training step, K = {K}, B = {B} (issue 9, target 3)\n\n"
            f"Command: `PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/contrastive_step.py "
            f"--before {args.before} --reps {args.reps}`\n\n"
            f"before = `{args.before}` ({commit[:7]}), after = this tree ({here}); torch {torch.__version__}, "
            f"one thread, {platform.processor() or platform.machine()}; process CPU time per step (forward, "
            f"backward, clipping, Adam), medians of interleaved repetitions on a shared 2-core machine. "
            f"Loss values and gradients of both versions on the same minibatch, atoms and weights agree "
            f"(columns at the right).\n\n"
            + to_markdown(table, ".4g")
            + "\n\n## Levers, one off at a time (same interleaved repetitions)\n\n"
            "'after, per-pair loss': this tree's code, but the loss scores B·K rows of θ and of x "
            "(`contrastive_loss(..., broadcast=False)`), so no context share, tall_linear or fast_tanh; "
            "'after, single-tensor Adam': this tree with main's optimiser.\n\n"
            + to_markdown(pd.DataFrame(ablations), ".4g") + "\n\n" + NOTES + "\n## Profiles (torch.profiler, top ops by self CPU time)\n\n"
            + "\n".join(profiles))
    Path(args.out).write_text(text)
    shutil.rmtree(tmp, ignore_errors=True)
    print(text)


if __name__ == "__main__":
    main()
