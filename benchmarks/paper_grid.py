"""The paper's benchmark grid: task × method × estimator × K × seed × rounds, one command,
resumable, cells in parallel processes, tidy per-round CSVs with every metric of protocol.md.

Run (one torch thread per cell; ``--jobs`` cells at a time):
    .venv/bin/python benchmarks/paper_grid.py --experiment fig1 --jobs 2 --out benchmarks/results/paper_grid
    .venv/bin/python benchmarks/paper_grid.py --experiment paper          # fig1 fig2 fig3 a3, 10 seeds
    .venv/bin/python benchmarks/paper_grid.py --tasks mg1 --methods snpe sre --k 2 100 --seeds 0 1 \\
        --rounds 5 --simulations 500
    .venv/bin/python benchmarks/paper_figures.py --out benchmarks/results/paper_grid

Layout under ``--out``: ``cells/<cell id>/checkpoint.pt`` (infer's checkpoint, written after every
round and mid-round, so an interrupted cell resumes where it stopped and re-simulates nothing),
``cells/<cell id>/rounds.csv`` (written last, atomically: a cell with it is finished and never
rerun), ``cells/<cell id>/error.txt`` (a cell that raised: the round it failed in, then the traceback;
it is retried next time) and
``paper_grid.csv``, every finished cell's rows together.

Columns: the configuration (cell, arm, task, method, estimator, num_atoms, seed, rounds,
simulations, sample_with, leakage_free, preset), the history (round, proposal, simulations,
failed, failure_reasons, training, epochs, acceptance_rate, seconds_propose/simulate/train/total, ...) and
the metrics (neg_log_prob_theta_star, median_distance, mmd2, c2st_round, c2st_final).
``--preset`` is infer's preset ("paper": MAF, K = 100, proposals from q(θ|x0)). LV's θ are
log rates already, so its KDE runs in log space as the protocol asks.

Cost, measured (one thread, shared 2-core machine): NG, SNPE-C + MAF, K = 100, 2 rounds × 500,
the paper's training: 64 s wall for the cell (training 3 s + 40 s, the atomic loss dominating;
C2ST of 10,000 final draws and per-round ~15 s). Extrapolated, not measured: training time grows
with the pooled data (~40 s per 1,000 pairs per round here), so a full 25 × 1,000 SNPE-C cell is
~3–4 h; plan the paper grid (260 cells) for a cluster or many days.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from _grid_cells import ALIASES, EXPERIMENTS, TASKS, Cell, experiment_cells, grid_cells
from _grid_metrics import ng_reference, round_rows

HERE = Path(__file__).parent
DEFAULT_OUT = HERE / "results" / "paper_grid"
COMBINED = "paper_grid.csv"


@dataclass(frozen=True)
class GridOptions:
    """Run-wide settings (the same for every cell; a changed one is refused by the checkpoints)."""

    out: Path = DEFAULT_OUT
    final_draws: int = 10_000
    round_c2st: bool = True
    max_epochs: int | None = None  # None: the paper's training (early stopping only)
    chains: int = 100


def cell_dir(out: Path, cell: Cell) -> Path:
    return Path(out) / "cells" / cell.id


def is_finished(out: Path, cell: Cell) -> bool:
    return (cell_dir(out, cell) / "rounds.csv").exists()


def _train_config(cell: Cell, max_epochs: int | None):
    """The paper's training settings with fewer epochs (fast runs); None: infer's own defaults."""
    if max_epochs is None:
        return None
    from sbi_lite import TrainConfig
    from sbi_lite.density import REGISTRY

    capabilities = getattr(REGISTRY.get(cell.estimator), "capabilities", None)
    # what infer picks by default: no clipping for SRE, the estimator's declared weight averaging
    return TrainConfig(max_epochs=max_epochs, clip_grad_norm=None if cell.method == "sre" else 5.0,
                       ema=capabilities.ema if capabilities else None)


def run_cell(cell: Cell, options: GridOptions) -> str:
    """Run (or resume) one cell and write its rows; returns "done", "skipped" or "error: ...".

    Errors are written to the cell's ``error.txt`` and returned, not raised, so one bad cell
    does not stop a grid.
    """
    import torch

    from sbi_lite import infer
    from sbi_lite.inference.checkpoint import read_checkpoint
    from simulators import get_task

    torch.set_num_threads(1)
    folder = cell_dir(options.out, cell)
    if is_finished(options.out, cell):
        return "skipped"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "error.txt").unlink(missing_ok=True)
    checkpoint = folder / "checkpoint.pt"
    try:
        task = get_task(cell.task)
        t0 = time.perf_counter()
        posterior = infer(task.simulator, task.prior, task.x0, method=cell.method,
                          estimator=None if cell.method == "sre" else cell.estimator,
                          rounds=cell.rounds, simulations_per_round=cell.simulations, num_atoms=cell.num_atoms,
                          preset=cell.preset, seed=cell.seed, n_jobs=1, progress=False,
                          leakage_free=cell.leakage_free if cell.method == "snpe" else None,
                          sample_with=cell.sample_with, chains=options.chains,
                          train_config=_train_config(cell, options.max_epochs), checkpoint=checkpoint)
        seconds_infer = time.perf_counter() - t0
        store = read_checkpoint(checkpoint)["store"]
        reference = ng_reference(task.x0) if cell.task == "nonlinear_gaussian" else None
        t1 = time.perf_counter()
        final = posterior.sample(options.final_draws, seed=cell.seed + 10_000).numpy() if reference is not None else None
        seconds_final = time.perf_counter() - t1
        rows = round_rows(posterior.history, store["theta"].double().numpy(), store["x"].double().numpy(),
                          store["round"].numpy(), task.x0, task.theta_true, reference=reference, final_draws=final,
                          round_c2st=options.round_c2st, seed=cell.seed)
        rows["seconds_final_sample"] = [math.nan] * (len(rows) - 1) + [seconds_final]
        # this process's infer time: the whole run, or only what a resumed run still had to do
        rows["seconds_infer_this_process"] = seconds_infer
        table = pd.DataFrame([cell.columns()] * len(rows)).join(rows)
        tmp = folder / ".rounds.csv.tmp"
        table.to_csv(tmp, index=False)
        os.replace(tmp, folder / "rounds.csv")  # the cell counts as finished only once this exists
        return "done"
    except Exception as e:  # noqa: BLE001 - recorded and reported, the grid goes on
        # the round it failed in, for paper_findings (the checkpoint is not kept with the results)
        try:
            failed_in = int(read_checkpoint(checkpoint)["round"]) + 1 if checkpoint.exists() else 1
        except Exception:  # noqa: BLE001 - an unreadable checkpoint leaves the round unknown
            failed_in = "?"
        (folder / "error.txt").write_text(f"failed in round {failed_in}\n" + traceback.format_exc())
        return f"error: {type(e).__name__}: {e}"


def combine(out: Path) -> pd.DataFrame:
    """Every finished cell's rows in one table, written to ``out/paper_grid.csv``."""
    tables = [pd.read_csv(p) for p in sorted((Path(out) / "cells").glob("*/rounds.csv"))]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    table.to_csv(Path(out) / COMBINED, index=False)
    return table


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def run_grid(cells: list[Cell], options: GridOptions, *, jobs: int = 1, progress: bool = True) -> dict[str, str]:
    """Run every unfinished cell, ``jobs`` processes at a time (0: in this process), then combine.

    Returns:
        cell id -> "done" / "error: ..." for the cells that ran (finished ones are not run).
    """
    from tqdm.auto import tqdm

    todo = [c for c in cells if not is_finished(options.out, c)]
    results = {}
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="cells", disable=not progress)
    if jobs == 0:
        for cell in todo:
            results[cell.id] = run_cell(cell, options)
            bar.set_postfix_str(f"{cell.id}: {results[cell.id][:40]}")
            bar.update()
    elif todo:
        os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the workers before they import torch
        context = multiprocessing.get_context("spawn")  # no forked copy of this process's torch threads
        with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=context, initializer=_one_thread) as pool:
            futures = {pool.submit(run_cell, cell, options): cell for cell in todo}
            for future in as_completed(futures):
                cell = futures[future]
                results[cell.id] = future.result()
                bar.set_postfix_str(f"{cell.id}: {results[cell.id][:40]}")
                bar.update()
    bar.close()
    combine(options.out)
    return results


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", nargs="+", choices=[*EXPERIMENTS, *ALIASES],
                        help="named grids (paper = fig1 fig2 fig3 a3; all = every one); the axes below "
                             "except --tasks, --seeds, --rounds and --simulations are then ignored")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--methods", nargs="+", default=["snpe"], choices=["snpe", "sre", "snl"])
    parser.add_argument("--estimators", nargs="+", default=["maf"])
    parser.add_argument("--k", nargs="+", type=int, default=[100])
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: 0-9 for --experiment, else 0")
    parser.add_argument("--rounds", type=int, default=None, help="default: the paper's per task (25, 20, 25)")
    parser.add_argument("--simulations", type=int, default=None, help="per round; default: the paper's 1000")
    parser.add_argument("--sample-with", nargs="+", default=["rejection"], choices=["rejection", "mcmc", "auto"])
    parser.add_argument("--leakage-free", nargs="+", default=["no"], choices=["no", "yes"])
    parser.add_argument("--preset", default="paper", choices=["paper", "default"], help="infer's preset")
    parser.add_argument("--jobs", type=int, default=1, help="cells in parallel (0: in this process)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--final-draws", type=int, default=10_000, help="final posterior draws for NG's C2ST")
    parser.add_argument("--no-round-c2st", action="store_true", help="skip the per-round C2ST on NG")
    parser.add_argument("--max-epochs", type=int, default=None, help="cap training epochs (fast runs only)")
    parser.add_argument("--list", action="store_true", help="print the cells and their state, run nothing")
    return parser.parse_args(argv)


def cells_from_args(args: argparse.Namespace) -> list[Cell]:
    if args.experiment:
        seeds = range(10) if args.seeds is None else args.seeds
        return experiment_cells(args.experiment, args.tasks, seeds, rounds=args.rounds, simulations=args.simulations,
                                preset=args.preset)
    return grid_cells(args.tasks, args.methods, args.estimators, args.k, args.seeds or [0], rounds=args.rounds,
                      simulations=args.simulations, sample_with=args.sample_with,
                      leakage_free=[v == "yes" for v in args.leakage_free], preset=args.preset)


def main(argv=None) -> dict[str, str]:
    args = parse_args(argv)
    cells = cells_from_args(args)
    options = GridOptions(out=args.out, final_draws=args.final_draws, round_c2st=not args.no_round_c2st,
                          max_epochs=args.max_epochs)
    if args.list:
        for cell in cells:
            print("finished" if is_finished(args.out, cell) else "to run  ", cell.id)
        return {}
    results = run_grid(cells, options, jobs=args.jobs)
    errors = {k: v for k, v in results.items() if v.startswith("error")}
    print(f"{len(cells)} cells: {len(cells) - len(results)} already finished, {len(results) - len(errors)} run now, "
          f"{len(errors)} failed" + "".join(f"\n  {k}: {v}" for k, v in errors.items()))
    print(f"rows: {args.out / COMBINED}")
    return results


if __name__ == "__main__":
    main()
