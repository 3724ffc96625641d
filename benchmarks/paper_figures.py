"""Figures of the paper grid from its CSVs (``paper_grid.py``): PNGs, mean ± sd over seeds.

Per experiment with results (fig1, fig2, fig3, a3, beyond; "grid" = every arm present):
``<experiment>_metrics.png`` (−log p(θ*) and median distance per round, one panel per task;
dashed: protocol.md's reference values, NG with exact-posterior proposals and simulations at θ*),
``<experiment>_acceptance.png`` (SNPE-C's rejection acceptance per round, log scale), and
``<experiment>_ng_c2st.png`` (NG only: C2ST and MMD² of each round's θ against the exact
posterior, and C2ST of the final posterior's draws).

Run: ``.venv/bin/python benchmarks/paper_figures.py --out benchmarks/results/paper_grid``
(reads ``paper_grid.csv`` there, writes ``figures/*.png`` next to it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from _grid_cells import EXPERIMENTS, TASKS, cell_in_arm

HERE = Path(__file__).parent
TITLES = {"nonlinear_gaussian": "Nonlinear Gaussian", "lotka_volterra": "Lotka–Volterra", "mg1": "M/G/1"}
METRICS = {"neg_log_prob_theta_star": "−log p(θ*)", "median_distance": "median distance to x0"}
# protocol.md's reference values: what exact-posterior proposals reach (NG), and the median
# distance of simulations at θ* itself, the floor a perfect posterior's simulations approach
GUIDES = {("nonlinear_gaussian", "neg_log_prob_theta_star"): 4.93, ("nonlinear_gaussian", "median_distance"): 2.66,
          ("lotka_volterra", "median_distance"): 0.77, ("mg1", "median_distance"): 0.010}


def _label(rows: pd.DataFrame) -> pd.Series:
    """The legend entry of each row: its arm, plus the preset and budget where they are not the only ones."""
    label = rows["arm"].astype(str)
    if rows["preset"].nunique() > 1:
        label = label + " [" + rows["preset"].astype(str) + "]"
    budget = rows["rounds"].astype(str) + "×" + rows["simulations"].astype(str)
    if budget.nunique() > 1:  # else two budgets' curves of one arm would merge into one
        label = label + " (" + budget + ")"
    return label


def _colors(rows: pd.DataFrame) -> dict[str, str]:
    """One colour per arm for the whole figure, so an arm missing on one task shifts no other."""
    import matplotlib

    labels = sorted(_label(rows).unique())
    if len(labels) <= 10:
        return {label: f"C{i}" for i, label in enumerate(labels)}
    return {label: matplotlib.colors.to_hex(matplotlib.colormaps["tab20"](i % 20)) for i, label in enumerate(labels)}


def _legend(ax, rows: pd.DataFrame, colors: dict[str, str]) -> None:
    """Every arm of the figure, with its seeds per task (min–max), whichever panels it is on."""
    from matplotlib.lines import Line2D

    labels = _label(rows)
    handles = []
    for label, color in colors.items():
        seeds = rows[labels == label].groupby("task")["seed"].nunique()
        n = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
        handles.append(Line2D([], [], color=color, marker="o", ms=3, label=f"{label} (n={n})"))
    ax.legend(handles=handles, fontsize=7)


def _curves(ax, rows: pd.DataFrame, column: str, colors: dict[str, str], *, log: bool = False) -> bool:
    """Mean ± sd over seeds of ``column`` per round, one line per arm; False if nothing to draw."""
    drawn = False
    for label, group in rows.groupby(_label(rows), sort=True):
        stats = group.groupby("round")[column].agg(["mean", "std", "count"]).dropna(subset=["mean"])
        if stats.empty:
            continue
        sd = stats["std"].fillna(0.0)  # one seed: no spread to show
        line, = ax.plot(stats.index, stats["mean"], marker="o", ms=3, color=colors[label])
        low = stats["mean"] - sd
        ax.fill_between(stats.index, low.clip(lower=1e-6) if log else low, stats["mean"] + sd,
                        color=line.get_color(), alpha=0.2)
        drawn = True
    if log and drawn:
        ax.set_yscale("log")
    ax.set_xlabel("round")
    ax.xaxis.get_major_locator().set_params(integer=True)
    return drawn


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _tasks(rows: pd.DataFrame) -> list[str]:
    return [t for t in TASKS if t in set(rows["task"])]


def metric_figure(rows: pd.DataFrame, name: str, folder: Path) -> Path:
    import matplotlib.pyplot as plt

    tasks, colors = _tasks(rows), _colors(rows)
    fig, axes = plt.subplots(len(METRICS), len(tasks), figsize=(4.5 * len(tasks), 7), squeeze=False)
    for j, task in enumerate(tasks):
        for i, (column, title) in enumerate(METRICS.items()):
            ax = axes[i, j]
            _curves(ax, rows[rows["task"] == task], column, colors)
            if (task, column) in GUIDES:
                ax.axhline(GUIDES[task, column], color="grey", lw=0.8, ls="--")
            ax.set_title(f"{TITLES[task]}: {title}")
    _legend(axes[0, -1], rows, colors)
    fig.suptitle(f"{name}: mean ± sd over seeds")
    return _save(fig, folder / f"{name}_metrics.png")


def acceptance_figure(rows: pd.DataFrame, name: str, folder: Path) -> Path | None:
    import matplotlib.pyplot as plt

    rows = rows[(rows["method"] == "snpe") & rows["acceptance_rate"].notna()]
    if rows.empty:
        return None
    tasks, colors = _tasks(rows), _colors(rows)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.8), squeeze=False)
    for j, task in enumerate(tasks):
        ax = axes[0, j]
        _curves(ax, rows[rows["task"] == task], "acceptance_rate", colors, log=True)
        ax.axhline(0.01, color="grey", lw=0.8, ls="--")  # the paper's ≈1% in later rounds
        ax.set_title(f"{TITLES[task]}: SNPE-C rejection acceptance")
    _legend(axes[0, -1], rows, colors)
    return _save(fig, folder / f"{name}_acceptance.png")


def c2st_figure(rows: pd.DataFrame, name: str, folder: Path) -> Path | None:
    import matplotlib.pyplot as plt

    rows = rows[rows["task"] == "nonlinear_gaussian"]
    if rows.empty or rows[["c2st_round", "mmd2", "c2st_final"]].isna().all().all():
        return None
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    colors = _colors(rows)
    _curves(axes[0], rows, "c2st_round", colors)
    axes[0].set_title("NG: C2ST of the round's θ vs exact posterior")
    _curves(axes[1], rows, "mmd2", colors)
    axes[1].set_title("NG: MMD² of the round's θ vs exact posterior")
    final = rows.dropna(subset=["c2st_final"])
    stats = final.groupby(_label(final))["c2st_final"].agg(["mean", "std"]).fillna(0.0)
    axes[2].barh(np.arange(len(stats)), stats["mean"], xerr=stats["std"], color=[colors[k] for k in stats.index],
                 alpha=0.7)
    axes[2].set_yticks(np.arange(len(stats)), stats.index, fontsize=7)
    axes[2].set_xlim(0.5, 1.0)
    axes[2].set_title("NG: C2ST of final posterior draws")
    _legend(axes[0], rows, colors)
    return _save(fig, folder / f"{name}_ng_c2st.png")


def draw_all(table: pd.DataFrame, folder: Path) -> list[Path]:
    """Every figure for the rows in ``table`` (the combined CSV); returns the files written."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none opened
    folder.mkdir(parents=True, exist_ok=True)
    if table.empty:
        return []
    cells = table.drop_duplicates("cell")
    groups = {"grid": table}
    for name in EXPERIMENTS:
        member = {c["cell"] for c in cells.to_dict("records") if cell_in_arm(c, name)}
        if member:
            groups[name] = table[table["cell"].isin(member)]
    paths = []
    for name, rows in groups.items():
        paths.append(metric_figure(rows, name, folder))
        paths += [p for p in (acceptance_figure(rows, name, folder), c2st_figure(rows, name, folder)) if p]
    return paths


def main(argv=None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "paper_grid", help="paper_grid.py's --out")
    args = parser.parse_args(argv)
    table = pd.read_csv(args.out / "paper_grid.csv")
    paths = draw_all(table, args.out / "figures")
    print("\n".join(map(str, paths)) or "no rows yet")
    return paths


if __name__ == "__main__":
    main()
