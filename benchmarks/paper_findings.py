"""The paper's five findings (../shared/spec/protocol.md) checked against the paper grid's CSV.

For every task, each finding's comparison: the arms it rests on, their −log p(θ*) and median
distance to x0 (lower is better), mean ± sd over seeds, the difference with its standard error,
and a verdict. A cell's metric is its mean over its last ``--last`` rounds (default 5): a single
round's KDE of 1,000 θ is noisy, and the paper's claims are about the later rounds.

Verdicts, from a paired t-test over the seeds both arms finished, at level 0.05 (≥ 2 common seeds,
else "too few seeds"; with 3 seeds only large differences are significant). The design pairs
them: at one seed every arm shares round 1's prior simulations, and the arms' later rounds are
correlated across seeds (pilot: r from −0.8 to +1.0, median +0.77), so the paired test has more
power than Welch's, whose p-value is shown alongside:
- "better than"  claims (A beats B): reproduced if A is significantly lower, refuted if it is
  significantly higher, else not resolved;
- "as good as" claims (A ≈ B): refuted if they differ significantly, else reproduced (meaning:
  no difference this many seeds can show);
- finding 4 (acceptance ≈ 1% on two of three tasks): per task, the lowest SNPE-C + MAF acceptance
  over the second half of the rounds (mean over seeds); reproduced if it is ≤ 3% on at least two
  tasks, with the box-supported NSF's lowest acceptance alongside.

Run: ``.venv/bin/python benchmarks/paper_findings.py --out benchmarks/results/paper_grid``
(reads ``paper_grid.csv`` there, writes ``findings.md`` next to it).
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from _grid_cells import TASKS, Cell
from _markdown import to_markdown

HERE = Path(__file__).parent
METRICS = {"neg_log_prob_theta_star": "−log p(θ*)", "median_distance": "median distance"}
ACCEPTANCE_FLOOR = 0.03  # "falls to ≈1%": at most 3% counts
_FAILED_IN = re.compile(r"failed in round (\d+)")
_STOPPED = re.compile(r"LowAcceptanceError: rejection sampling accepted (\d+) of (\d+) draws")
# protocol.md's round-1 reference values (1,000 prior simulations, 20 repetitions): (mean, sd)
ROUND_ONE = {"nonlinear_gaussian": {"neg_log_prob_theta_star": (9.97, 0.99), "median_distance": (11.71, 0.19)},
             "lotka_volterra": {"neg_log_prob_theta_star": (8.59, 0.79), "median_distance": (7.43, math.nan)},
             "mg1": {"neg_log_prob_theta_star": (4.63, 0.25), "median_distance": (0.318, 0.012)}}
_SNPE = dict(method="snpe", estimator="maf", num_atoms=100, sample_with="rejection", leakage_free=False)
_SRE = dict(method="sre", num_atoms=100)
# finding -> (claim, arm A, arm B, kind): "better" = A beats B, "same" = A ≈ B
COMPARISONS = [
    ("1. larger K is better: SNPE-C K = 100 vs K = 2", _SNPE, dict(_SNPE, num_atoms=2), "better"),
    ("1. larger K is better: SNPE-C K = 100 vs K = 50", _SNPE, dict(_SNPE, num_atoms=50), "better"),
    ("1. larger K is better: SRE K = 100 vs K = 2", _SRE, dict(_SRE, num_atoms=2), "better"),
    ("1. larger K is better: SRE K = 100 vs K = 50", _SRE, dict(_SRE, num_atoms=50), "better"),
    ("2. SNPE-C ≈ SRE (K = 100)", _SNPE, _SRE, "same"),
    ("3. SNL beats SRE (K = 100)", dict(method="snl", estimator="maf"), _SRE, "better"),
    ("5. SNPE-C with MCMC ≈ i.i.d. sampling", dict(_SNPE, sample_with="mcmc"), _SNPE, "same"),
]
# beyond the paper: the zoo's other estimators against the paper's, "reproduced" read as "A is better"
BEYOND = [
    ("SNPE-C: AEM vs MAF (K = 100)", dict(method="snpe", estimator="aem"), _SNPE, "better"),
    ("SNPE-C: diffusion vs MAF (K = 100)", dict(method="snpe", estimator="diffusion"), _SNPE, "better"),
    ("SNL: NSF vs MAF", dict(method="snl", estimator="nsf"), dict(method="snl", estimator="maf"), "better"),
]
_BEYOND_VERDICTS = {"reproduced": "A better", "refuted": "B better", "not resolved": "no difference detected"}


def _select(rows: pd.DataFrame, arm: dict) -> pd.DataFrame:
    keep = pd.Series(True, index=rows.index)
    for column, value in arm.items():
        keep &= rows[column] == value
    return rows[keep]


def per_cell(table: pd.DataFrame, last: int = 5) -> pd.DataFrame:
    """One row per cell: its configuration and each metric's mean over the cell's last ``last`` rounds."""
    late = table[table["round"] > table["rounds"] - last]
    config = ["cell", "task", "budget", "method", "estimator", "num_atoms", "seed", "sample_with", "leakage_free"]
    return late.groupby(config, dropna=False)[list(METRICS)].mean().reset_index()


def _t_test_p(test, d: float, *samples: pd.Series) -> float:
    scale = max(float(sample.abs().max()) for sample in samples)
    if any(not np.allclose(sample, sample.mean(), rtol=0, atol=1e-12 * scale) for sample in samples):
        return float(test(*samples).pvalue)
    # no spread (up to rounding): equal means are the same, any difference is certain
    return 1.0 if abs(d) <= 1e-12 * scale else 0.0


def compare(a: pd.Series, b: pd.Series, kind: str, level: float = 0.05) -> tuple[float, float, float, int, str]:
    """Two arms' lower-is-better values, indexed by seed: (the mean paired difference a − b,
    Welch's p over all seeds, the paired test's p, the number of pairs, verdict). The difference
    and the verdict are the paired test's, over the seeds both arms have (NaN values, from cells
    without a metric, are left out and so lower the seed count)."""
    a, b = a.dropna(), b.dropna()
    pairs = (a - b).dropna()
    d = pairs.mean()
    welch = math.nan if len(a) < 2 or len(b) < 2 else _t_test_p(
        lambda x, y: stats.ttest_ind(x, y, equal_var=False), a.mean() - b.mean(), a, b)
    if len(pairs) < 2:
        return d, welch, math.nan, len(pairs), "too few seeds"
    p = _t_test_p(lambda x: stats.ttest_1samp(x, 0.0), d, pairs)
    if kind == "same":
        return d, welch, p, len(pairs), "refuted" if p < level else "reproduced"
    return d, welch, p, len(pairs), "not resolved" if p >= level else "reproduced" if d < 0 else "refuted"


def _p(p: float) -> str:
    return "—" if math.isnan(p) else f"{p:.2g}"


def _spread(values: pd.Series) -> str:
    return f"{values.mean():.3g} ± {values.std():.2g} (n={len(values)})" if len(values) > 1 else (
        f"{values.mean():.3g} (n=1)" if len(values) else "—")


def comparison_rows(cells: pd.DataFrame, comparisons: list[tuple] = COMPARISONS) -> list[dict]:
    """One row per (comparison, task, metric) with data for both arms."""
    rows = []
    for claim, arm_a, arm_b, kind in comparisons:
        for (task, budget), same in cells.groupby(["task", "budget"], sort=False):
            a, b = _select(same, arm_a).set_index("seed"), _select(same, arm_b).set_index("seed")
            if a.empty or b.empty:
                continue
            if not (a.index.is_unique and b.index.is_unique):  # an arm that matches two cells per seed
                raise ValueError(f"{claim!r} on {task}: an arm matches several cells at one seed")
            for column, name in METRICS.items():
                d, welch, paired, n, verdict = compare(a[column], b[column], kind)
                rows.append({"finding": claim, "task": task, "budget": budget, "metric": name, "A": _spread(a[column]),
                             "B": _spread(b[column]), "A − B, paired": f"{d:+.3g}", "Welch p": _p(welch),
                             "paired p (seeds)": f"{_p(paired)} ({n})", "verdict": verdict})
    return rows


def read_failures(out: Path) -> pd.DataFrame:
    """The cells that raised and have not finished since (``cells/<id>/error.txt``): configuration,
    the round they failed in, the error line, and the acceptance a rejection sampler that gave up
    measured (NaN for other errors)."""
    rows = []
    for path in sorted((Path(out) / "cells").glob("*/error.txt")):
        if (path.parent / "rounds.csv").exists():
            continue
        lines = path.read_text().strip().splitlines() or [""]
        failed_in = _FAILED_IN.match(lines[0])
        stopped = _STOPPED.search(lines[-1])
        rows.append({**Cell.from_id(path.parent.name).columns(), "error": lines[-1],
                     "failed_in_round": int(failed_in[1]) if failed_in else math.nan,
                     "acceptance_rate": int(stopped[1]) / int(stopped[2]) if stopped else math.nan})
    return pd.DataFrame(rows)


def acceptance_rows(table: pd.DataFrame, failures: pd.DataFrame | None = None) -> list[dict]:
    """Finding 4: per task, the lowest later-round acceptance of SNPE-C's MAF and box NSF (mean over
    seeds). A run that stopped in a later round because rejection sampling gave up counts with the
    acceptance it measured then (leaving it out would hide the worst leakage); every stopped run
    is listed with its round."""
    rows = []
    late = table[(table["round"] > table["rounds"] / 2) & table["acceptance_rate"].notna()]
    stopped = None if failures is None else failures[failures["acceptance_rate"].notna()]
    if stopped is not None:  # a later-round stop is one more measured acceptance of its seed
        late = pd.concat([late, stopped[stopped["failed_in_round"] > stopped["rounds"] / 2]])
    for (task, budget), same in late.groupby(["task", "budget"], sort=False):
        lowest = {}
        for name, arm in (("MAF", _SNPE), ("NSF (box)", dict(_SNPE, estimator="nsf", leakage_free=True))):
            chosen = _select(same, arm)
            if not chosen.empty:
                lowest[name] = chosen.groupby("seed")["acceptance_rate"].min()
        if "MAF" in lowest:
            gave_up = pd.DataFrame() if stopped is None else _select(
                stopped[(stopped["task"] == task) & (stopped["budget"] == budget)], _SNPE)
            listed = ", ".join(f"seed {int(r.seed)} in round {r.failed_in_round:.0f}" for r in gave_up.itertuples())
            rows.append({"task": task, "budget": budget, "MAF: lowest acceptance, later rounds": _spread(lowest["MAF"]),
                         "MAF runs stopped by rejection": listed or "—",
                         "NSF (box)": _spread(lowest["NSF (box)"]) if "NSF (box)" in lowest else "—",
                         f"MAF ≤ {ACCEPTANCE_FLOOR:.0%}": bool(lowest["MAF"].mean() <= ACCEPTANCE_FLOOR)})
    return rows


def round_one_rows(table: pd.DataFrame) -> list[dict]:
    """The sanity check: round 1 (prior simulations, the same for every method) against protocol.md.

    One value per seed (the mean over that seed's cells, which share round 1 when they share the
    seed), mean ± sd over seeds, and z = the difference of the two means over its standard error
    (the reference's per-run sd, for our n seeds and its 20 repetitions): |z| ≤ 2 is "consistent".
    The reference used 1,000 simulations; the KDE's bandwidth shrinks with N.
    """
    rows = []
    first = table[table["round"] == 1]
    for (task, budget), same in first.groupby(["task", "budget"], sort=False):
        for column, name in METRICS.items():
            values = same.groupby("seed")[column].mean().dropna()
            mean, sd = ROUND_ONE.get(task, {}).get(column, (math.nan, math.nan))
            if values.empty or math.isnan(mean):
                continue
            z = (values.mean() - mean) / (sd * math.sqrt(1 / len(values) + 1 / 20))
            rows.append({"task": task, "budget": budget, "metric": name, "ours, round 1": _spread(values),
                         "protocol.md (1,000 sims)": f"{mean:.3g}" + ("" if math.isnan(sd) else f" ± {sd:.2g}"),
                         "z": f"{z:+.2f}" if not math.isnan(z) else "—",
                         "check": "—" if math.isnan(z) else "consistent" if abs(z) <= 2 else "differs"})
    return rows


def headline_rows(table: pd.DataFrame) -> list[dict]:
    """Per task, budget and arm: the final round's metrics, the final posterior's C2ST (NG) and
    the median compute of a cell (its rounds' seconds, final draws excluded); metrics mean ± sd over seeds."""
    rows = []
    final = table[table["round"] == table["rounds"]]
    seconds = table.groupby("cell")["seconds_total"].sum()
    for (task, budget, arm), same in final.groupby(["task", "budget", "arm"], sort=True):
        row = {"task": task, "budget": budget, "arm": arm}
        row.update({f"final {name}": _spread(same[column].dropna()) for column, name in METRICS.items()})
        row["C2ST, final draws"] = _spread(same["c2st_final"].dropna()) if same["c2st_final"].notna().any() else "—"
        row["median seconds per cell"] = f"{seconds[same['cell']].median():.0f}"
        rows.append(row)
    return rows


def acceptance_verdict(rows: list[dict]) -> str:
    tasks = {r["task"] for r in rows}
    if len(tasks) < len(TASKS):
        return f"not resolved: SNPE-C + MAF ran on {len(tasks)} of {len(TASKS)} tasks"
    low = {r["task"] for r in rows if r[f"MAF ≤ {ACCEPTANCE_FLOOR:.0%}"]}  # at any budget
    return f"{'reproduced' if len(low) >= 2 else 'refuted'}: acceptance ≤ {ACCEPTANCE_FLOOR:.0%} on {len(low)} of {len(tasks)} tasks"


def _with_budget(rows: pd.DataFrame, preset: str) -> pd.DataFrame:
    return rows[rows["preset"] == preset].assign(
        budget=lambda t: t["rounds"].astype(str) + "×" + t["simulations"].astype(str))


def findings(table: pd.DataFrame, last: int = 5, preset: str = "paper", failures: pd.DataFrame | None = None) -> str:
    """The findings report (markdown) for the paper grid's combined table: the cells of one
    ``preset``, arms compared within one task and budget (rounds × simulations); ``failures``
    (``read_failures``) are listed and enter finding 4."""
    if table.empty:
        return "# The paper's findings against the grid\n\nNo rows yet.\n"
    table = _with_budget(table, preset)
    if failures is not None and not failures.empty:
        failures = _with_budget(failures, preset)
    failures = None if failures is None or failures.empty else failures  # none of this preset
    cells = per_cell(table, last)
    compared = comparison_rows(cells)
    accept = acceptance_rows(table, failures)
    seeds = cells.groupby("task").seed.nunique().to_dict()
    lines = ["# The paper's findings against the grid", "",
             "Generated by `benchmarks/paper_findings.py` from `paper_grid.csv`: lower is better; each cell's "
             f"metric is its mean over its last {last} rounds; mean ± sd over seeds; verdicts from a paired "
             "t-test over the seeds both arms finished (arms share round 1 at a seed), Welch's p alongside.",
             f"Preset {preset!r}; cells: {len(cells)}; seeds per task: {seeds or 'none'}.", "",
             "## Headline numbers per task and arm", "",
             to_markdown(pd.DataFrame(headline_rows(table))), "",
             "## Findings 1, 2, 3 and 5", ""]
    if compared:
        lines += [to_markdown(pd.DataFrame(compared)), "",
                  f"{len(compared)} tests at level 0.05, uncorrected: about {len(compared) / 20:.1f} verdicts may be "
                  "chance; a verdict that holds on every task and both metrics is the evidence.", ""]
    else:
        lines += ["No finding has both of its arms yet.", ""]
    beyond = [dict(r, verdict=_BEYOND_VERDICTS.get(r["verdict"], r["verdict"])) for r in comparison_rows(cells, BEYOND)]
    if beyond:
        lines += ["## Beyond the paper: the zoo's other estimators", "",
                  "Same cells, same tests; A is the other estimator, B the paper's. A failed cell has no rows "
                  "here (see the last section).", "", to_markdown(pd.DataFrame(beyond)), ""]
    sanity = round_one_rows(table)
    if sanity:
        lines += ["## Sanity check: round 1 against protocol.md's reference values", "", to_markdown(pd.DataFrame(sanity)), ""]
    lines += ["## Finding 4: SNPE-C's rejection acceptance falls to ≈1% on two of the three tasks", ""]
    if accept:
        lines += [to_markdown(pd.DataFrame(accept)), "", acceptance_verdict(accept)]
    else:
        lines.append("No SNPE-C + MAF (K = 100, i.i.d.) rows yet.")
    if failures is not None:
        lines += ["", "## Cells that failed", "",
                  f"{len(failures)} cells raised and have no rows. The tables above leave them out, which flatters "
                  "an arm whose runs failed, except finding 4's, which lists the runs rejection gave up on:", "",
                  to_markdown(failures[["cell", "failed_in_round", "error"]].assign(error=failures["error"].str.slice(0, 160)))]
    return "\n".join(lines) + "\n"


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "paper_grid", help="paper_grid.py's --out")
    parser.add_argument("--last", type=int, default=5, help="rounds averaged at the end of each cell")
    parser.add_argument("--preset", default="paper", help="the cells' infer preset")
    args = parser.parse_args(argv)
    path = args.out / "findings.md"
    path.write_text(findings(pd.read_csv(args.out / "paper_grid.csv"), args.last, args.preset, read_failures(args.out)))
    print(path.read_text())
    return path


if __name__ == "__main__":
    main()
