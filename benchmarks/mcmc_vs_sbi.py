"""Effective samples per CPU-second: our SliceSampler against sbi's SliceSamplerVectorized.

Two potentials, both torch callables θ (B, 5) -> (B,) that BOTH samplers call (sbi's through a
numpy wrapper, as its MCMCPosterior does):

- ``ng``: the exact Nonlinear Gaussian (SLCP) posterior at the paper's x0: log p(x0|θ) plus the
  box prior [-3, 3]^5, in float32.
- ``snl``: a trained SNL potential (``NetworkPotential``: MAF log q(x0|θ) + log prior) from
  ``infer(method="snl", rounds=1, simulations_per_round=1000, seed=0)``, cached under /tmp.

Each repetition runs every sampler once, in a rotating order, from the same start (prior draws)
and with its own seed, and times it in process CPU seconds (one thread): tuning, burn-in and
sampling included. Settings, each giving ``--draws`` draws:

- ``ours``: this tree's sampler at infer's defaults (100 chains, tune 50, burn-in 200 sweeps,
  thin 10).
- ``before``: the sampler at ``--before`` (git ref) at the same settings, for before/after.
- ``sbi defaults``: sbi 0.27's defaults as MCMCPosterior(method="slice_np_vectorized") runs them
  (MCMCPosteriorParameters): 20 chains, thin 1, warmup_steps 200 (= 200 sweeps discarded),
  tuning 50, init width 0.01; its chains start from prior draws here, as every row's do, where
  MCMCPosterior would start them by ``init_strategy="resample"``.
- ``sbi thin 10``: the same at thin 10, where sbi counts warmup_steps in thinned steps, so 2,000
  sweeps are discarded (what this file called sbi's defaults until sbi's default thin was checked:
  it is 1).
- ``sbi matched``: sbi at our settings (100 chains, thin 10, tuning 50, 200 warm-up sweeps).

ESS: arviz bulk ESS of the kept draws (chains × draws per chain), the minimum over the
parameters. The NG posterior has four modes (the signs of θ3 and θ4, which the likelihood only
sees squared); axis-aligned slice chains rarely cross between them, so ESS is taken on the
sign-invariant quantities θ1, θ2, |θ3|, |θ4|, θ5 (the crossings are counted and reported).

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mcmc_vs_sbi.py [--reps 3,2] [--draws 5000] [--before REF]

writes ``benchmarks/results/mcmc_vs_sbi.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _markdown import to_markdown  # noqa: E402
from sbi_lite.samplers import SliceSampler  # noqa: E402
from simulators import get_task  # noqa: E402

SNL_CACHE = Path("/tmp/sbi_lite_mcmc_vs_sbi_snl_potential.pt")
THIN, TUNE, BURN = 10, 50, 200


class Counted:
    """A potential that counts its calls and points."""

    def __init__(self, fn):
        self.fn, self.calls, self.points = fn, 0, 0

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.points += len(theta)
        return self.fn(theta)


def ng_potential():
    task = get_task("nonlinear_gaussian")
    x0 = torch.as_tensor(task.x0, dtype=torch.float32)
    prior = task.prior

    def potential(theta: torch.Tensor) -> torch.Tensor:
        lp = prior.log_prob(theta)
        return torch.where(torch.isfinite(lp), task.log_likelihood(theta, x0) + lp, lp)

    return potential, prior


def snl_potential():
    task = get_task("nonlinear_gaussian")
    if not SNL_CACHE.exists():
        from sbi_lite import infer

        post = infer(task.simulator, task.prior, task.x0, method="snl", rounds=1, simulations_per_round=1000,
                     seed=0, progress=False)
        torch.save(post.potential, SNL_CACHE)
    potential = torch.load(SNL_CACHE, weights_only=False)
    potential.net.eval()
    return potential, task.prior


def load_before(ref: str):
    """SliceSampler as it is at git ``ref``, imported from its source."""
    src = subprocess.run(["git", "show", f"{ref}:sbi_lite/samplers/slice.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    path = Path("/tmp") / f"slice_before_{ref.replace('/', '_')}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("slice_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.SliceSampler


def run_ours(cls, potential, init, seed, draws, **kw):
    s = cls(potential, init, seed=seed, tune=TUNE, burn_in=BURN, **kw)
    return s.sample(draws, thin=THIN, per_chain=True).double().numpy()


def run_sbi(potential, init, seed, draws, warmup_sweeps, thin=THIN):
    from sbi.samplers.mcmc.slice_numpy import SliceSamplerVectorized

    def log_prob(params: np.ndarray) -> np.ndarray:  # what MCMCPosterior's potential wrapper does
        with torch.no_grad():
            return potential(torch.as_tensor(params, dtype=torch.float32)).double().numpy()

    np.random.seed(seed)  # sbi's sampler draws from numpy's global stream
    c = len(init)
    sampler = SliceSamplerVectorized(log_prob, init.double().numpy(), num_chains=c, thin=thin, tuning=TUNE,
                                     verbose=False, init_width=0.01)
    # MCMCPosterior._slice_np_mcmc: warmup_steps · thin sweeps, then ceil(draws · thin / chains)
    kept = math.ceil(draws * thin / c)
    samples = sampler.run(warmup_sweeps + kept)  # (C, (warmup + kept) / thin, d), thinned
    return samples[:, warmup_sweeps // thin:]


def invariant(draws: np.ndarray, name: str) -> np.ndarray:
    if name == "ng":
        draws = draws.copy()
        draws[..., 2:4] = np.abs(draws[..., 2:4])
    return draws


def min_ess(draws: np.ndarray) -> float:
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(min(az.ess(draws[..., j], method="bulk") for j in range(draws.shape[-1])))


def crossings(draws: np.ndarray) -> float:
    """Share of consecutive kept draws whose (sign θ3, sign θ4) differ."""
    s = np.sign(draws[..., 2:4])
    return float((s[:, 1:] != s[:, :-1]).any(-1).mean())


def settings(draws: int, before):
    out = {
        "ours": lambda pot, init, seed: run_ours(SliceSampler, pot, init, seed, draws),
        "sbi defaults": lambda pot, init, seed: run_sbi(pot, init[:20], seed, draws, 200, thin=1),
        "sbi thin 10": lambda pot, init, seed: run_sbi(pot, init[:20], seed, draws, 200 * THIN),
        "sbi matched": lambda pot, init, seed: run_sbi(pot, init, seed, draws, BURN),
    }
    if before is not None:
        out["before"] = lambda pot, init, seed: run_ours(before, pot, init, seed, draws)
    return out


def bench(name: str, reps: int, draws: int, before, only=None) -> pd.DataFrame:
    torch.set_num_threads(1)
    potential, prior = ng_potential() if name == "ng" else snl_potential()
    runs = settings(draws, before)
    if only:
        runs = {k: v for k, v in runs.items() if k in only}
    rows = []
    keys = list(runs)
    for rep in range(reps):
        g = torch.Generator().manual_seed(1000 + rep)
        init = prior.sample((100,), generator=g)
        order = keys[rep % len(keys):] + keys[:rep % len(keys)]
        for key in order:
            pot = Counted(potential)
            t0 = time.process_time()
            out = runs[key](pot, init, rep)
            cpu = time.process_time() - t0
            inv = invariant(out, name)
            rows.append({"potential": name, "sampler": key, "rep": rep, "chains": out.shape[0], "draws": out.shape[0] * out.shape[1],
                         "cpu_s": cpu, "calls": pot.calls, "points": pot.points, "min_bulk_ess": min_ess(inv),
                         "mode_crossings": crossings(out) if name == "ng" else float("nan")})
            rows[-1]["ess_per_cpu_s"] = rows[-1]["min_bulk_ess"] / cpu
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    med = df.groupby(["potential", "sampler"], sort=False).median(numeric_only=True).drop(columns="rep")
    out = []
    for (pot, key), row in med.iterrows():
        r = row.to_dict()
        # ratio per repetition (same start, interleaved), then the median
        mine = df[(df.potential == pot) & (df.sampler == key)].set_index("rep")
        for ref in ("sbi defaults", "sbi thin 10", "sbi matched"):
            theirs = df[(df.potential == pot) & (df.sampler == ref)].set_index("rep")
            if len(theirs):
                r[f"ESS/s ÷ {ref}"] = float((mine.ess_per_cpu_s / theirs.ess_per_cpu_s).median())
        out.append({"potential": pot, "sampler": key, **r})
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", default="3", help="repetitions, one number or one per potential (3,2)")
    ap.add_argument("--draws", type=int, default=5000)
    ap.add_argument("--before", default=None, help="git ref of the 'before' sampler (omit to skip it)")
    ap.add_argument("--potentials", default="ng,snl")
    ap.add_argument("--only", default=None, help="comma-separated samplers to run")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mcmc_vs_sbi.md"))
    args = ap.parse_args()
    before = load_before(args.before) if args.before else None
    only = args.only.split(",") if args.only else None
    pots = args.potentials.split(",")
    reps = [int(r) for r in args.reps.split(",")]
    reps = dict(zip(pots, reps if len(reps) == len(pots) else reps[:1] * len(pots)))
    df = pd.concat([bench(p, reps[p], args.draws, before, only) for p in pots])
    table = summary(df)
    print(to_markdown(table))
    if args.out == "-":
        return
    import sbi

    head = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    Path(args.out).write_text(
        "# ESS per CPU-second: our slice sampler vs sbi's SliceSamplerVectorized\n\n"
        f"`PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mcmc_vs_sbi.py {' '.join(sys.argv[1:])}` "
        f"at {head} (sbi {sbi.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        "one thread; the machine's 2 cores were shared with other benchmark runs, so CPU times are noisy: "
        "every repetition runs all samplers back to back from the same start, and ratios are medians of "
        "per-repetition ratios).\n\n"
        f"{args.draws} draws, at thin 10 except 'sbi defaults' (thin 1). Medians over {args.reps} repetitions (per potential); ESS = arviz bulk ESS of the kept draws, "
        "min over parameters (NG: over θ1, θ2, |θ3|, |θ4|, θ5); cpu_s includes tuning and burn-in; calls/points: "
        "potential calls and points evaluated.\n\n" + to_markdown(table) + "\n\n## Every run\n\n" + to_markdown(df) + "\n")


if __name__ == "__main__":
    main()
