"""How long rejection sampling takes to give up on a hopeless proposal, now and with its two
safeguards switched off: the check that stops once the draws left surely cannot make up the
shortfall (``_cannot_finish``, 2026-11-29) and the cap that keeps a batch from going past the
point where accepting nothing more would end the run (``_give_up_point``, 2026-11-30).

A 5-D MAF and a 5-D score diffusion (untrained, context 3-D) propose; the "prior" is a box
holding about 0.004% of the MAF's mass. 10,000 draws are wanted, as a truncated-prior round asks,
with at most auto mode's 100 proposals per draw (1 / min_acceptance) or ``sample_with="rejection"``'s
1,000 (max_draws_factor). Process CPU seconds on one thread. The diffusion's slow paths are
extrapolated from its measured cost per draw and the MAF's draw count in the same setting (both
accept almost nothing; benchmarks/results/diffusion_proposal.md has a trained diffusion's cost:
about 1 ms a draw).

    PYTHONPATH=. .venv/bin/python benchmarks/rejection_giveup.py

writes ``benchmarks/results/rejection_giveup.md``.
"""

from __future__ import annotations

import platform
import sys
import time
from contextlib import nullcontext
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

WANTED = 10_000
# max_draws -> the settings it is run with; a variant's name -> the safeguards it switches off
BUDGETS = {1_000_000: "auto mode: 100 per draw", 10_000_000: "sample_with='rejection': 1,000 per draw"}
VARIANTS = {"now": (), "no batch cap (before 2026-11-30)": ("_give_up_point",),
            "neither safeguard (before 2026-11-29)": ("_give_up_point", "_cannot_finish")}
_OFF = {"_give_up_point": lambda missing, accepted, max_draws: max_draws, "_cannot_finish": lambda *a: False}


def give_up(net, box: BoxUniform, max_draws: int, off: tuple[str, ...]) -> tuple[int, float]:
    """(proposals drawn, CPU seconds) until rejection sampling raised LowAcceptanceError."""
    g, x0 = torch.Generator().manual_seed(0), torch.zeros(3)

    def propose(m: int) -> torch.Tensor:
        with torch.no_grad():
            return net.sample(m, x0, generator=g)

    start = time.process_time()
    try:
        with mock.patch.multiple(rejection, **{name: _OFF[name] for name in off}) if off else nullcontext():
            rejection_sample(propose, box.support_contains, WANTED, max_draws=max_draws)
    except LowAcceptanceError as e:
        return e.drawn, time.process_time() - start
    raise RuntimeError("the proposal was not hopeless: choose a smaller box")


def _budget_rows(maf, diffusion, box: BoxUniform, max_draws: int, budget: str) -> list[dict]:
    """Every variant with the MAF, measured; the diffusion measured as it is now and, without the
    safeguards (an ODE solve per draw: hours), extrapolated from its cost per draw and the MAF's
    draw count in the same variant (both accept almost nothing)."""
    def row(name: str, variant: str, drawn: int, cpu: float, how: str) -> dict:
        return {"max draws": budget, "proposal": name, "safeguards": variant, "draws": drawn, "CPU s": cpu,
                "CPU ms per draw": 1e3 * cpu / drawn, "how": how}

    mafs = [row("MAF", variant, *give_up(maf, box, max_draws, off), "measured") for variant, off in VARIANTS.items()]
    drawn, cpu = give_up(diffusion, box, max_draws, ())
    return mafs + [row("diffusion", "now", drawn, cpu, "measured")] + [
        row("diffusion", r["safeguards"], r["draws"], cpu / drawn * r["draws"], "extrapolated") for r in mafs[1:]]


def main() -> pd.DataFrame:
    torch.set_num_threads(1)
    maf, diffusion = build("maf", 5, 3, seed=0), build("diffusion", 5, 3, seed=0)
    with torch.no_grad():
        draws = maf.sample(100_000, torch.zeros(3), generator=torch.Generator().manual_seed(1))
    mean, sd = draws.mean(0), draws.std(0)
    box = BoxUniform(mean + sd, mean + 3 * sd)  # about 16% of each marginal: 0.004% jointly, measured
    acceptance = box.support_contains(draws).float().mean().item()
    table = pd.DataFrame([row for max_draws, budget in BUDGETS.items()
                          for row in _budget_rows(maf, diffusion, box, max_draws, budget)])
    text = "\n".join([
        "# Giving up on a hopeless rejection proposal", "",
        f"{WANTED:,} draws wanted, at most 1,000,000 or 10,000,000 proposals; "
        f"the box holds {acceptance:.3%} of the MAF's mass (100,000 draws), and the diffusion's acceptance in "
        "it is surely too low as well (it gave up). "
        f"Machine: {platform.processor() or platform.machine()}, one torch thread; torch {torch.__version__}.",
        "", "Command: `PYTHONPATH=. .venv/bin/python benchmarks/rejection_giveup.py`", "",
        to_markdown(table), ""])
    (ROOT / "benchmarks" / "results" / "rejection_giveup.md").write_text(text)
    print(text)
    return table


if __name__ == "__main__":
    main()
