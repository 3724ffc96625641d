"""How often split R-hat false-alarms at infer's per-round MCMC sizes, and what a broken run gives.

One round of SNL/SRE proposals: 100 chains started at prior draws, tuned (50 sweeps), burned in
(200 sweeps), then 1,000 draws at thin 10, i.e. 100 sweeps per chain. From each call's
UNTHINNED trace (100 chains × 100 sweeps) and, for comparison, the 10 thinned draws per chain:
arviz's rank-normalised split R-hat (max over parameters), bulk ESS (min), and nested R-hat
(Margossian et al. 2022; 10 superchains of 10 chains). Healthy targets: standard Gaussian 5-D,
a correlated 5-D Gaussian with scales 0.1–1, the Nonlinear Gaussian posterior at x0 in one of its
four sign modes (θ3, θ4 > 0). Broken: two modes 20 sd apart in θ1, 70/30 of the chains in each;
and the correlated Gaussian with ρ = 0.999 and no burn-in.

    python benchmarks/mcmc_health.py [seeds]

writes ``benchmarks/results/mcmc_health.md``.
"""

import math
import sys
import time
from pathlib import Path

import warnings

import arviz as az
import numpy as np
import pandas as pd
import torch

from _markdown import to_markdown
from sbi_lite.samplers import SliceSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from simulators import nonlinear_gaussian as ng  # noqa: E402

D, CHAINS, DRAWS, THIN = 5, 100, 1000, 10


def box(lo, hi):
    lo, hi = torch.as_tensor(lo, dtype=torch.float32), torch.as_tensor(hi, dtype=torch.float32)
    return lambda t: torch.where(((t >= lo) & (t <= hi)).all(-1), 0.0, -math.inf), (lo, hi)


def gaussian(cov):
    prec = torch.linalg.inv(cov)
    return lambda t: -0.5 * ((t @ prec) * t).sum(-1)


def correlated(rho):
    scales = torch.tensor([0.1, 0.3, 1.0, 0.5, 0.2])
    corr = torch.eye(D)
    corr[0, 1] = corr[1, 0] = rho
    corr[2, 3] = corr[3, 2] = -rho
    corr[3, 4] = corr[4, 3] = 0.3  # keeps the matrix positive definite for rho up to 0.95
    return gaussian(scales[:, None] * corr * scales)


def ng_one_mode(t):
    return ng.log_likelihood(t, ng.X0).float()


def bimodal(t):  # modes at θ1 = ±10 (sd 1), standard normal elsewhere: no bracket spans the gap
    a = torch.logaddexp(-0.5 * (t[:, 0] - 10) ** 2, -0.5 * (t[:, 0] + 10) ** 2)
    return a - 0.5 * t[:, 1:].pow(2).sum(-1)


TARGETS = {  # name: (potential, support box, init, tune, burn_in)
    "gauss5": (gaussian(torch.eye(D)), box([-3] * D, [3] * D), "prior", 50, 200),
    "correlated5": (correlated(0.9), box([-3] * D, [3] * D), "prior", 50, 200),
    "ng_one_mode": (ng_one_mode, box([-3, -3, 0, 0, -3], [3, 3, 3, 3, 3]), "prior", 50, 200),
    "broken: modes 70/30": (bimodal, box([-15] + [-3] * (D - 1), [15] + [3] * (D - 1)), "modes", 50, 200),
    "broken: rho .999, no burn-in": (correlated(0.999), box([-3] * D, [3] * D), "prior", 5, 0),
}


def trace_of(name, seed):
    pot, (support, (lo, hi)), init, tune, burn_in = TARGETS[name]
    g = torch.Generator().manual_seed(seed)
    start = lo + (hi - lo) * torch.rand(CHAINS, D, generator=g)
    if init == "modes":
        # 70 chains in one mode, 30 in the other, in random order (so superchains mix them)
        side = torch.where(torch.randperm(CHAINS, generator=g) < 70, 10.0, -10.0)
        start[:, 0] = side + torch.randn(CHAINS, generator=g)
    s = SliceSampler(lambda t: pot(t) + support(t), start, seed=seed, tune=tune, burn_in=burn_in)
    s.warm_up()
    sweeps = []
    for _ in range(DRAWS // CHAINS * THIN):  # what sample(1000, thin=10) runs after its warm-up
        s.sweep()
        sweeps.append(s.chains.clone())
    return torch.stack(sweeps, 1).double().numpy()  # (C, S, d)


def nested_rhat(trace, superchains=10):
    """Margossian et al. 2022 nR-hat, max over parameters: chains grouped in order."""
    k, m = superchains, trace.shape[0] // superchains
    t = trace[: k * m].reshape(k, m, *trace.shape[1:])  # (K, M, N, d)
    chain_mean = t.mean(2)  # (K, M, d)
    super_mean = chain_mean.mean(1)  # (K, d)
    b = super_mean.var(0, ddof=1)
    w = (chain_mean.var(1, ddof=1) + t.var(2, ddof=1).mean(1)).mean(0)
    return float(np.sqrt(1 + b / w).max())


def stats(trace):
    thinned = trace[:, THIN - 1::THIN]
    return {"rhat": float(az.rhat(az.convert_to_dataset(trace))["x"].max()),
            "rhat_thinned": float(az.rhat(az.convert_to_dataset(thinned))["x"].max()),
            "nested_rhat": nested_rhat(trace), "nested_rhat_k5": nested_rhat(trace, 5),
            "ess_bulk": float(az.ess(az.convert_to_dataset(trace))["x"].min())}


def main(seeds: int) -> None:
    warnings.filterwarnings("ignore", message="More chains")  # 100 chains × 10 thinned draws is meant
    rows = []
    for name in TARGETS:
        t0 = time.perf_counter()
        n = max(seeds // 4, 2) if name.startswith("ng") else seeds  # its potential is ~10x slower
        per = pd.DataFrame([stats(trace_of(name, seed)) for seed in range(n)])
        rows.append({"target": name, "seeds": n,
                     "rhat median": per.rhat.median(), "rhat max": per.rhat.max(),
                     "P(rhat > 1.01)": (per.rhat > 1.01).mean(),
                     "thinned rhat max": per.rhat_thinned.max(),
                     "P(thinned > 1.01)": (per.rhat_thinned > 1.01).mean(),
                     "nested rhat max": per.nested_rhat.max(),
                     "P(nested > 1.01)": (per.nested_rhat > 1.01).mean(),
                     "nested K=5 max": per.nested_rhat_k5.max(), "P(nested K=5 > 1.01)": (per.nested_rhat_k5 > 1.01).mean(),
                     "ess_bulk min": per.ess_bulk.min(), "ess_bulk median": per.ess_bulk.median()})
        print(rows[-1], f"{time.perf_counter() - t0:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    out = Path(__file__).parent / "results" / "mcmc_health.md"
    out.write_text("# Split R-hat and ESS of one round's slice-sampling call\n\n"
                   f"{CHAINS} chains, {DRAWS} draws at thin {THIN} ({DRAWS // CHAINS * THIN} sweeps per chain); "
                   "rank-normalised split R-hat (max over θ) and bulk ESS (min over θ) from the unthinned trace; "
                   "`thinned`: from the 10 kept draws per chain. `python benchmarks/mcmc_health.py "
                   f"{seeds}`.\n\n" + to_markdown(table) + "\n")
    print(to_markdown(table))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
