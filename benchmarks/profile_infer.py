"""Where one ``infer`` run spends its time: a configuration of ``ng_accuracy.py`` on one Nonlinear
Gaussian observation (10 rounds × 1,000 simulations, then 10,000 final draws) under cProfile.

Writes ``results/profile_<config>_obs<k>_seed<s>.md``: seconds per phase and round (from
``posterior.history``), and the functions with the most own time and the sbi_lite functions with the
most cumulative time. The profile covers what ``ng_accuracy.py`` times: inference and the final draws.

    PYTHONPATH=. .venv/bin/python benchmarks/profile_infer.py --config ours_sre --obs 0 --seed 0
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _markdown import to_markdown  # noqa: E402
from ng_accuracy import (FINAL_DRAWS, HERE, OURS, ROUNDS, SIMULATIONS, _commit, _observation,  # noqa: E402
                         run_ours_posterior)

PHASES = ["seconds_propose", "seconds_simulate", "seconds_train"]


def _functions(stats: pstats.Stats, column: str, top: int, only: str | None = None) -> pd.DataFrame:
    """The ``top`` functions by ``column`` ("own s" or "cumulative s"), optionally only files containing ``only``."""
    rows = [{"function": f"{Path(file).name}:{line} {name}", "calls": calls, "own s": tt, "cumulative s": ct}
            for (file, line, name), (_, calls, tt, ct, _) in stats.stats.items()
            if only is None or only in file]
    return pd.DataFrame(rows).sort_values(column, ascending=False).head(top).round(2)


def profile(config: str, k: int, seed: int) -> str:
    import torch

    torch.set_num_threads(1)
    x0, _ = _observation(k)
    profiler = cProfile.Profile()
    cpu = time.process_time()
    profiler.enable()
    post, _ = run_ours_posterior(config, x0, seed)
    profiler.disable()
    cpu = time.process_time() - cpu
    stats = pstats.Stats(profiler)
    history = post.history[["round", "epochs", *PHASES, "seconds_total"]].round(2)
    totals = history[PHASES].sum().round(1)
    return "\n".join([
        f"# Profile of `{config}` (NG observation {k}, seed {seed}, {ROUNDS} × {SIMULATIONS:,}, "
        f"{FINAL_DRAWS:,} final draws)",
        "",
        f"Command: `PYTHONPATH=. .venv/bin/python benchmarks/profile_infer.py --config {config} --obs {k} "
        f"--seed {seed}` at {_commit()}; one torch thread; cProfile's overhead included in every number.",
        "",
        f"Process CPU under the profiler, inference and final draws: {cpu:,.0f} s; phases summed over "
        f"rounds: propose {totals.seconds_propose:,.0f} s, simulate {totals.seconds_simulate:,.0f} s, train "
        f"{totals.seconds_train:,.0f} s; the rest is set-up and the {FINAL_DRAWS:,} final draws.",
        "",
        "## Per round", "", to_markdown(history), "",
        "## Most own time", "", to_markdown(_functions(stats, "own s", 20)), "",
        "## sbi_lite functions by cumulative time", "",
        to_markdown(_functions(stats, "cumulative s", 25, "sbi_lite")), "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="ours_sre", choices=list(OURS))
    parser.add_argument("--obs", type=int, default=0, choices=range(6))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = HERE / "results" / f"profile_{args.config}_obs{args.obs}_seed{args.seed}.md"
    out.write_text(profile(args.config, args.obs, args.seed))
    print(out.read_text())


if __name__ == "__main__":
    main()
