"""Two levers for ESS per CPU-second that are settings, not code: more chains for fewer sweeps
each, and a short burn-in when the chains start at posterior draws (later rounds start from
the previous round's chains). Our sampler only, same potentials as ``mcmc_vs_sbi.py``, 5,000
draws at thin 10, tune 50; runs alternate within each repetition (process CPU time, one thread).

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mcmc_levers.py [reps]

writes ``benchmarks/results/mcmc_levers.md``.
"""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import to_markdown  # noqa: E402
from mcmc_vs_sbi import Counted, invariant, min_ess, ng_potential, snl_potential  # noqa: E402
from sbi_lite.samplers import SliceSampler  # noqa: E402

REF = Path(__file__).parent / "reference" / "nonlinear_gaussian_posterior.npy"
OUT = Path(__file__).parent / "results" / "mcmc_levers.md"
CASES = {  # name: (chains, start, burn_in)
    "100 chains, prior start, burn-in 200 (default)": (100, "prior", 200),
    "200 chains, prior start, burn-in 200": (200, "prior", 200),
    "400 chains, prior start, burn-in 200": (400, "prior", 200),
    "100 chains, posterior start, burn-in 20": (100, "posterior", 20),
    "400 chains, posterior start, burn-in 20": (400, "posterior", 20),
}


def main(reps: int) -> None:
    torch.set_num_threads(1)
    ref = torch.as_tensor(np.load(REF))
    rows = []
    for name in ("ng", "snl"):
        potential, prior = ng_potential() if name == "ng" else snl_potential()
        keys = list(CASES)
        for rep in range(reps):
            g = torch.Generator().manual_seed(2000 + rep)
            for key in keys[rep % len(keys):] + keys[:rep % len(keys)]:
                chains, start, burn = CASES[key]
                if start == "prior":
                    init = prior.sample((chains,), generator=g)
                else:  # NG: reference draws; SNL: stand-in for the previous round's chains, also the NG reference
                    init = ref[torch.randint(len(ref), (chains,), generator=g)]
                pot = Counted(potential)
                t0 = time.process_time()
                s = SliceSampler(pot, init, seed=rep, tune=50, burn_in=burn)
                out = s.sample(5000, thin=10, per_chain=True).double().numpy()
                cpu = time.process_time() - t0
                ess = min_ess(invariant(out, name))
                rows.append({"potential": name, "case": key, "rep": rep, "cpu_s": cpu, "calls": pot.calls,
                             "min_bulk_ess": ess, "ess_per_cpu_s": ess / cpu})
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    table = df.groupby(["potential", "case"], sort=False).median(numeric_only=True).drop(columns="rep").reset_index()
    default = table[table.case.str.endswith("(default)")].set_index("potential").ess_per_cpu_s
    table["ESS/s ÷ default"] = table.ess_per_cpu_s / table.potential.map(default)
    print(to_markdown(table))
    OUT.write_text(
        "# Slice-sampler settings: chains, starts and burn-in (ESS per CPU-second)\n\n"
        f"`PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mcmc_levers.py {reps}` (torch {torch.__version__}, "
        "one thread, process CPU time, a shared 2-core machine). Potentials of `mcmc_vs_sbi.py`: the exact "
        "Nonlinear-Gaussian posterior (ng) and a trained SNL likelihood (snl); 5,000 draws at thin 10 after 50 "
        "tuning sweeps, CPU including tuning and burn-in; ESS = arviz bulk ESS of the kept draws, min over "
        "parameters. 'posterior start': the chains start at draws of the exact NG posterior (for snl too: it "
        f"stands in for the previous round's chains). Medians over {reps} repetitions, cases alternating.\n\n"
        + to_markdown(table) + "\n\n## Every run\n\n" + to_markdown(df) + "\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
