"""False-positive rate and power of SBC, HPD coverage and TARP on the Gaussian-linear model.

θ ~ N(0, I_D), x = θ + N(0, σ² I): the posterior is N(x/(1+σ²), σ²/(1+σ²) I), sampled exactly.
Wrong posteriors: every coordinate shifted by ½ posterior sd ("bias"), sd × 0.7 ("over"),
sd × 1.5 ("under"). Prints, per test and error, the rejection rate over repetitions at each N.

    python benchmarks/diagnostics_power.py [repetitions]

writes ``benchmarks/results/diagnostics_power.md``.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _markdown import to_markdown
from sbi_lite.diagnostics import expected_coverage, sbc, tarp

ERRORS = {"exact": (0.0, 1.0), "bias": (0.5, 1.0), "over": (0.0, 0.7), "under": (0.0, 1.5)}


def gaussian_linear(n, error, *, d=2, num_draws=100, sigma=1.0, seed=0):
    """θ* (n, d), draws (n, L, d), log q(θ*) (n,), log q(draws) (n, L) of the chosen posterior."""
    shift, widen = ERRORS[error]
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(n, d))
    x = theta + sigma * rng.normal(size=(n, d))
    sd = sigma / np.sqrt(1 + sigma**2)
    mean = x / (1 + sigma**2) + shift * sd
    s = widen * sd
    draws = mean[:, None] + s * rng.normal(size=(n, num_draws, d))
    logq = lambda t, m: -0.5 * (((t - m) / s) ** 2).sum(-1)  # unnormalised: enough for coverage
    return theta, draws, logq(theta, mean), logq(draws, mean[:, None])


TESTS = {
    "sbc": lambda th, dr, lt, ld, s: sbc(th, dr, seed=s).calibrated is False,
    "sbc_chi2": lambda th, dr, lt, ld, s: sbc(th, dr, test="chi2", seed=s).calibrated is False,
    "coverage": lambda th, dr, lt, ld, s: expected_coverage(lt, ld, seed=s).p_value < 0.05,
    "tarp": lambda th, dr, lt, ld, s: tarp(th, dr, num_bootstrap=1, seed=s).p_value < 0.05,
    "tarp_uniform": lambda th, dr, lt, ld, s: tarp(th, dr, reference="uniform", num_bootstrap=1, seed=s).p_value < 0.05,
}


# Fine grids around where each test's power crosses 0.9 (found with a coarse pass over 50..2000).
PLAN = {
    ("sbc", "exact"): [20, 100, 500], ("sbc", "bias"): [20, 25, 30, 35, 40, 50],
    ("sbc", "over"): [50, 60, 70, 80, 90, 100], ("sbc", "under"): [60, 70, 80, 90, 100, 120],
    ("coverage", "exact"): [20, 100, 500], ("coverage", "bias"): [200, 250, 300, 350, 400],
    ("coverage", "over"): [10, 15, 20, 25, 30, 40], ("coverage", "under"): [10, 15, 20, 25, 30, 40],
    ("tarp", "exact"): [50, 500, 1500], ("tarp", "bias"): [1000, 1200, 1400, 1600, 1800, 2000],
    ("tarp", "over"): [100, 125, 150, 175, 200, 250], ("tarp", "under"): [50, 60, 70, 80, 90, 100],
}


def main(reps=200):
    rows = []
    t0 = time.perf_counter()
    for (test, error), sizes in PLAN.items():
        for n in sizes:
            hits = sum(TESTS[test](*gaussian_linear(n, error, seed=10_000 * n + r), r) for r in range(reps))
            rows.append({"test": test, "error": error, "n": n, "rejection_rate": hits / reps})
            print(rows[-1], f"{time.perf_counter() - t0:.0f}s", flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string())
    seconds = time.perf_counter() - t0
    out = Path(__file__).parent / "results" / "diagnostics_power.md"
    out.write_text(
        "# False-positive rate and power of the calibration diagnostics\n\n"
        f"Command: `python benchmarks/diagnostics_power.py {reps}` ({reps} repetitions per cell, "
        f"{seconds:.0f} s on {os.cpu_count()} cores). Gaussian-linear, D = 2, L = 100 posterior draws, "
        "α = 0.05. Rejection rate of the exact posterior (false positives, want ≈ 0.05) and of a posterior "
        "shifted by ½ sd (bias), with sd × 0.7 (over-confident) or sd × 1.5 (under-confident), at N test "
        "simulations. The tests in `tests/test_diagnostics.py` pin N where the power reaches 0.9.\n\n"
        + to_markdown(table, floatfmt=".3f") + "\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
