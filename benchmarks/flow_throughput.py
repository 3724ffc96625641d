"""Throughput of the flows at SBI sizes: training steps/s, log_prob and sampling rates.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/flow_throughput.py`` (writes results/flow_throughput.md).
One torch thread, process CPU time: the rates are per core.
When the optional ``sbi`` package is installed (``pip install -e '.[bench]'``) its NSF and MAF
of the same size are timed in the same run, on the same data.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch

from sbi_lite.density import build

from _markdown import to_markdown
from ng_accuracy import _commit

torch.set_num_threads(1)
SIZES = [(2, 5), (5, 20), (10, 50)]
BATCH = 256


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    t0 = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - t0) / repeat


def ours(name: str, d: int, c: int):
    q = build(name, d, c)
    return q, lambda y, x: q.log_prob(y, x), lambda n, x: q.sample(n, x)


def theirs(name: str, d: int, c: int):
    try:
        from sbi.neural_nets import posterior_nn
    except ImportError:
        return None
    y, x = torch.randn(512, d), torch.randn(512, c)
    q = posterior_nn(model=name, hidden_features=50)(y, x)
    return q, lambda a, b: q.log_prob(a[None], b).squeeze(0), lambda n, b: q.sample((n,), b)


def measure(label, made, d, c):
    q, log_prob, sample = made
    y, x = torch.randn(BATCH, d), torch.randn(BATCH, c)
    opt = torch.optim.Adam(q.parameters(), 5e-4)

    def step():
        opt.zero_grad()
        (-log_prob(y, x)).mean().backward()
        opt.step()

    with torch.no_grad():
        lp = timed(lambda: log_prob(y, x), 20)
        one = timed(lambda: sample(10_000, x[:1]), 3)
        many = timed(lambda: sample(100, x), 3)
    return {"estimator": label, "d": d, "context": c, "train steps/s": 1 / timed(step, 20),
            "log_prob /s": BATCH / lp, "samples/s (1 context)": 10_000 / one,
            "samples/s (256 contexts)": 100 * BATCH / many}


def main() -> None:
    rows = []
    for d, c in SIZES:
        for name in ["maf", "nsf", "nsf_ar"]:
            rows.append(measure(f"sbi_lite {name}", ours(name, d, c), d, c))
        for name in ["maf", "nsf"]:
            made = theirs(name, d, c)
            if made is not None:
                rows.append(measure(f"sbi {name}", made, d, c))
    table = pd.DataFrame(rows)
    note = "" if any(r["estimator"].startswith("sbi ") for r in rows) else \
        "\nThe `sbi` package was not installed in this run, so it has no rows.\n"
    text = (f"# Flow throughput (batch {BATCH}, one CPU thread, process CPU time, float32)\n\n"
            f"Command: `PYTHONPATH=. .venv/bin/python benchmarks/flow_throughput.py` at {_commit()}, torch "
            f"{torch.__version__}\n{note}\n"
            + to_markdown(table, ",.0f") + "\n")
    (Path(__file__).parent / "results" / "flow_throughput.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
