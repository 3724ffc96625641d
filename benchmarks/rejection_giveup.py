"""How long rejection sampling takes to give up on a hopeless proposal, before and after it
learned to stop once the draws left surely cannot make up the shortfall (``_cannot_finish``;
"before" is the same code with that check switched off).

A 5-D MAF and a 5-D score diffusion (untrained, context 3-D) propose; the "prior" is a box
holding about 0.1% of the MAF's mass. 10,000 draws are wanted, as a truncated-prior round asks,
with auto mode's bound of 1 / min_acceptance = 100 proposals per draw. Process CPU seconds on one
thread. The diffusion is only run "after": "before", its 1,000,000 ODE draws are
extrapolated from its measured cost per draw (benchmarks/results/diffusion_proposal.md has the
trained model's: about 1 ms a draw).

    PYTHONPATH=. .venv/bin/python benchmarks/rejection_giveup.py

writes ``benchmarks/results/rejection_giveup.md``.
"""

from __future__ import annotations

import platform
import sys
import time
from unittest import mock
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _markdown import to_markdown  # noqa: E402
from sbi_lite import BoxUniform, build  # noqa: E402
from sbi_lite.samplers import LowAcceptanceError, rejection, rejection_sample  # noqa: E402

WANTED, MAX_DRAWS = 10_000, 1_000_000


def give_up(net, box: BoxUniform, early: bool) -> tuple[int, float]:
    """(proposals drawn, CPU seconds) until rejection sampling raised LowAcceptanceError."""
    g, x0 = torch.Generator().manual_seed(0), torch.zeros(3)

    def propose(m: int) -> torch.Tensor:
        with torch.no_grad():
            return net.sample(m, x0, generator=g)

    start = time.process_time()
    try:
        with mock.patch.object(rejection, "_cannot_finish", rejection._cannot_finish if early else lambda *a: False):
            rejection_sample(propose, box.support_contains, WANTED, max_draws=MAX_DRAWS)
    except LowAcceptanceError as e:
        return e.drawn, time.process_time() - start
    raise RuntimeError("the proposal was not hopeless: choose a smaller box")


def main() -> pd.DataFrame:
    torch.set_num_threads(1)
    rows = []
    maf, diffusion = build("maf", 5, 3, seed=0), build("diffusion", 5, 3, seed=0)
    with torch.no_grad():
        draws = maf.sample(100_000, torch.zeros(3), generator=torch.Generator().manual_seed(1))
    mean, sd = draws.mean(0), draws.std(0)
    box = BoxUniform(mean + 0.6 * sd, mean + 3 * sd)  # about 27% of each marginal: ~0.1% jointly
    acceptance = box.support_contains(draws).float().mean().item()
    for name, net, settings in (("MAF", maf, (False, True)), ("diffusion", diffusion, (True,))):
        for early in settings:
            drawn, cpu = give_up(net, box, early)
            rows.append({"proposal": name, "gives up": "early (now)" if early else "at max_draws (before)",
                         "draws": drawn, "CPU s": cpu, "CPU ms per draw": 1e3 * cpu / drawn})
        if False not in settings:  # the old path's cost, extrapolated
            rows.append({"proposal": name, "gives up": "at max_draws (before, extrapolated)", "draws": MAX_DRAWS,
                         "CPU s": rows[-1]["CPU ms per draw"] * MAX_DRAWS / 1e3,
                         "CPU ms per draw": rows[-1]["CPU ms per draw"]})
    table = pd.DataFrame(rows)
    text = "\n".join([
        "# Giving up on a hopeless rejection proposal", "",
        f"{WANTED:,} draws wanted, at most {MAX_DRAWS:,} proposals (auto mode's 1 / min_acceptance per draw); "
        f"the box holds {acceptance:.2%} of the MAF's mass (100,000 draws), and the diffusion's acceptance in "
        "it is surely below 1% too (it gave up). "
        f"Machine: {platform.processor() or platform.machine()}, one torch thread; torch {torch.__version__}.",
        "", "Command: `PYTHONPATH=. .venv/bin/python benchmarks/rejection_giveup.py`", "",
        to_markdown(table), ""])
    (ROOT / "benchmarks" / "results" / "rejection_giveup.md").write_text(text)
    print(text)
    return table


if __name__ == "__main__":
    main()
