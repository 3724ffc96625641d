"""Is ``infer(..., device="cuda")`` worth it? The three methods with their defaults on the Nonlinear
Gaussian's own x0, a few rounds, on the GPU and on the CPU, one run each, the devices taking turns
within each method: seconds of training (and per epoch, since epoch counts differ with float
kernels), proposal seconds, the 10,000 final draws, and C2ST against the exact reference (the same
data on both devices, so the two should agree within seed noise, not bitwise).

    PYTHONPATH=. python benchmarks/devices.py [--methods snpe sre snl] [--devices cuda cpu] \\
        [--rounds 2] [--simulations 1000] [--cpu-threads 16 1]

writes ``benchmarks/results/devices.md`` (``--out`` to change). Needs a CUDA device for the
``cuda`` rows; a GPU run uses one CPU thread, a CPU run each of ``--cpu-threads`` (default: all
cores). Each cell runs in a fresh process, so one device's warm-up or allocator state does not
reach the other's; the GPU's own start-up (cuBLAS handles, first kernel loads) is in its round 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _markdown import to_markdown  # noqa: E402

OBSERVATIONS = ROOT / "benchmarks" / "reference" / "ng_observations.npz"
FINAL_DRAWS = 10_000


def run_cell(method: str, device: str, threads: int, rounds: int, simulations: int) -> dict[str, object]:
    """One run of ``infer`` with the method's defaults: a row of the table (and the machine)."""
    import torch

    from sbi_lite import infer
    from sbi_lite.diagnostics import c2st
    from simulators import get_task

    torch.set_num_threads(threads)
    data = np.load(OBSERVATIONS)
    task = get_task("nonlinear_gaussian")
    start = time.perf_counter()
    post = infer(task.simulator, task.prior, data["x0"][0], method=method, rounds=rounds,
                 simulations_per_round=simulations, seed=0, progress=False, device=device)
    t_infer = time.perf_counter() - start
    start = time.perf_counter()
    draws = post.sample(FINAL_DRAWS, seed=1)
    t_draws = time.perf_counter() - start
    h = post.history
    return {"method": method, "device": device if device == "cuda" else f"cpu, {threads} thread(s)",
            "rounds": len(h), "epochs": int(h.epochs.sum()), "train s": float(h.seconds_train.sum()),
            "train s / epoch": float(h.seconds_train.sum() / h.epochs.sum()),
            "propose s": float(h.seconds_propose.sum()), "infer s": t_infer, "10,000 draws s": t_draws,
            "c2st": c2st(draws.float(), torch.as_tensor(data["reference"][0], dtype=torch.float32), seed=0),
            "machine": f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device'}; "
                       f"{os.cpu_count()} CPU cores ({platform.machine()}); torch {torch.__version__}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["snpe", "sre", "snl"], choices=["snpe", "sre", "snl"])
    parser.add_argument("--devices", nargs="+", default=["cuda", "cpu"], choices=["cuda", "cpu"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--simulations", type=int, default=1000)
    parser.add_argument("--cpu-threads", nargs="+", type=int, default=[os.cpu_count()])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "devices.md")
    parser.add_argument("--cell", nargs=3, metavar=("METHOD", "DEVICE", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:  # the child process: one cell, printed as the last line, in JSON
        method, device, threads = args.cell
        print(json.dumps(run_cell(method, device, int(threads), args.rounds, args.simulations)))
        return
    command = (f"PYTHONPATH=. python benchmarks/devices.py --methods {' '.join(args.methods)} --devices "
               f"{' '.join(args.devices)} --rounds {args.rounds} --simulations {args.simulations} --cpu-threads "
               f"{' '.join(map(str, args.cpu_threads))}")
    cells = [(m, d, t) for m in args.methods for d in args.devices for t in ([1] if d == "cuda" else args.cpu_threads)]
    rows = []
    for method, device, threads in cells:
        out = subprocess.run([sys.executable, __file__, "--cell", method, device, str(threads), "--rounds",
                              str(args.rounds), "--simulations", str(args.simulations)],
                             stdout=subprocess.PIPE, text=True, check=True)  # a failing cell's traceback shows
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
        table = pd.DataFrame(rows)
        args.out.write_text(
            f"# sbi_lite on the GPU and on the CPU\n\nCommand: `{command}`. Machine: {table.pop('machine').iloc[0]}. "
            f"Nonlinear Gaussian, observation 0, each method's defaults, seed 0, one run per row. Seconds are "
            f"wall-clock; a GPU run's round 1 includes the GPU's start-up, and round r fits r × "
            f"{args.simulations:,} pairs, so 'train s / epoch' averages epochs of different sizes.\n\n"
            f"{to_markdown(table)}\n")


if __name__ == "__main__":
    main()
