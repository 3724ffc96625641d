"""Is ``infer(..., device="cuda")`` worth it? The three methods with their defaults on the Nonlinear
Gaussian's own x0, a few rounds, on the GPU and on the CPU, alternated, in one process each: seconds
per round's training (and per epoch, since epoch counts differ with float kernels), proposal
seconds, the 10,000 final draws, and C2ST against the exact reference (the same data on both
devices, so the two should agree within seed noise, not bitwise).

    PYTHONPATH=. python benchmarks/devices.py [--methods snpe sre snl] [--rounds 2] \\
        [--devices cuda cpu] [--cpu-threads 16] [--out benchmarks/results/devices.md]

Needs a CUDA device for the ``cuda`` rows. Each (method, device) runs in a fresh process, so one
device's warm-up or allocator state does not reach the other's.
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


def run_cell(method: str, device: str, rounds: int, simulations: int, threads: int) -> dict:
    """One run of ``infer`` with the method's defaults: a row of the table."""
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
            "rounds": rounds, "epochs": int(h.epochs.sum()), "train s": float(h.seconds_train.sum()),
            "train s / epoch": float(h.seconds_train.sum() / h.epochs.sum()),
            "propose s": float(h.seconds_propose.sum()), "infer s": t_infer, "10,000 draws s": t_draws,
            "c2st": c2st(draws.float(), torch.as_tensor(data["reference"][0], dtype=torch.float32), seed=0)}


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    return f"{gpu}; {os.cpu_count()} CPU cores ({platform.machine()}); torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["snpe", "sre", "snl"], choices=["snpe", "sre", "snl"])
    parser.add_argument("--devices", nargs="+", default=["cuda", "cpu"], choices=["cuda", "cpu"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--simulations", type=int, default=1000)
    parser.add_argument("--cpu-threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "devices.md")
    parser.add_argument("--cell", nargs=2, metavar=("METHOD", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:  # the child process: one cell, printed as one JSON line
        threads = 1 if args.cell[1] == "cuda" else args.cpu_threads
        print(json.dumps(run_cell(*args.cell, args.rounds, args.simulations, threads)))
        return
    rows = []
    for method in args.methods:
        for device in args.devices:
            out = subprocess.run([sys.executable, __file__, "--cell", method, device, "--rounds", str(args.rounds),
                                  "--simulations", str(args.simulations), "--cpu-threads", str(args.cpu_threads)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
            table = pd.DataFrame(rows)
            args.out.write_text(
                f"# sbi_lite on the GPU and on the CPU\n\nCommand: `PYTHONPATH=. python benchmarks/devices.py "
                f"--methods {' '.join(args.methods)} --devices {' '.join(args.devices)} --rounds {args.rounds} "
                f"--simulations {args.simulations} --cpu-threads {args.cpu_threads}`. Machine: {machine()}. "
                f"Nonlinear Gaussian, observation 0, each method's defaults, seed 0; the GPU runs use one CPU "
                f"thread. Seconds are wall-clock.\n\n{to_markdown(table)}\n")


if __name__ == "__main__":
    main()
