"""Configurations compared cell by cell with the peer that ran beside them: one line each."""

from __future__ import annotations

import pandas as pd

from sbi_lite.train import TrainConfig


def describe(kwargs: dict) -> str:
    """infer's keyword arguments, a TrainConfig shown by the fields it changes."""
    return "{" + ", ".join(f"{k!r}: {v.brief() if isinstance(v, TrainConfig) else repr(v)}"
                           for k, v in kwargs.items()) + "}"


def paired_lines(runs: pd.DataFrame, peers: dict[str, str], configs: dict[str, dict]) -> list[str]:
    """For each ``config -> peer`` with cells (observation, seed) both ran: C2ST and CPU medians, the
    paired C2ST difference and the median of the per-cell CPU ratios.

    ``runs`` has one row per run: config, observation, seed, c2st, seconds_cpu.
    """
    wide = runs.pivot_table(index=["observation", "seed"], columns="config", values=["c2st", "seconds_cpu"])
    lines = []
    for config, peer in peers.items():
        if config not in wide["c2st"] or peer not in wide["c2st"]:
            continue
        both = wide.dropna(subset=[("c2st", config), ("c2st", peer)])
        if both.empty:
            continue
        c2st, cpu = both["c2st"], both["seconds_cpu"]
        delta = c2st[config] - c2st[peer]
        lines.append(f"- {config} ({describe(configs[config])}) against {peer}, {len(both)} paired cells: median C2ST "
                     f"{c2st[config].median():.3f} against {c2st[peer].median():.3f}, median paired difference "
                     f"{delta.median():+.3f}, better in {int((delta < 0).sum())} of {len(both)}; median CPU "
                     f"{cpu[config].median():.0f} s against {cpu[peer].median():.0f} s (median of the per-cell "
                     f"ratios {(cpu[config] / cpu[peer]).median():.2f}).")
    return lines
