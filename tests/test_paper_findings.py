"""benchmarks/paper_findings.py: the verdicts on the paper's five findings, on a synthetic grid
table whose later rounds reproduce some findings and refute others by construction."""

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import paper_findings  # noqa: E402
from _grid_cells import TASKS, Cell  # noqa: E402

ROUNDS = 6
# arm -> (round-1 value, later-round mean of both metrics): lower is better. Round 1 ranks the
# arms the other way round, so averaging in the wrong rounds flips the verdicts
ARMS = {
    ("snpe", "maf", 100, "rejection", False): (9.0, 5.0),
    ("snpe", "maf", 50, "rejection", False): (9.0, 5.0),   # K = 100 vs 50: no difference
    ("snpe", "maf", 2, "rejection", False): (1.0, 6.0),    # K = 100 beats K = 2
    ("snpe", "maf", 100, "mcmc", False): (9.0, 5.0),       # MCMC as good as i.i.d.
    ("snpe", "nsf", 100, "rejection", True): (9.0, 5.0),
    ("sre", "classifier", 100, "auto", False): (9.0, 5.0),  # SRE as good as SNPE-C
    ("sre", "classifier", 50, "auto", False): (9.0, 5.0),
    ("sre", "classifier", 2, "auto", False): (9.0, 4.0),   # SRE K = 2 beats K = 100: refuted
    ("snl", "maf", None, "auto", False): (-20.0, 7.0),     # SNL loses to SRE: refuted
    ("snpe", "aem", None, "rejection", False): (9.0, 4.0),    # beyond: AEM beats the MAF
    ("snpe", "diffusion", None, "rejection", False): (9.0, 5.0),  # diffusion level with it
    ("snl", "nsf", None, "auto", False): (-20.0, 8.0),     # SNL's NSF loses to its MAF
}
ACCEPTANCE = {"nonlinear_gaussian": 0.01, "lotka_volterra": 0.5, "mg1": 0.02}


def synthetic(seeds=range(4)) -> pd.DataFrame:
    # one noise per (seed, round), shared by the arms: equal arms differ by exactly 0
    noise, rows = 0.05 * np.random.default_rng(0).standard_normal((max(seeds) + 1, ROUNDS + 1)), []
    for task in TASKS:
        for (method, estimator, k, sample_with, box), (first, later) in ARMS.items():
            if box and task == "mg1":
                continue
            for seed in seeds:
                cell = Cell(task, method, estimator, k, seed, ROUNDS, 1000, sample_with, box)
                for r in range(1, ROUNDS + 1):
                    value = first if r == 1 else later + noise[seed, r]
                    # the MAF's acceptance halves every round down to its task's floor
                    accept = np.nan if r == 1 or method != "snpe" else 1.0 if box else ACCEPTANCE[task] * 2.0 ** (ROUNDS - r)
                    c2st = 0.8 if r == ROUNDS and task == "nonlinear_gaussian" else np.nan
                    rows.append({**cell.columns(), "round": r, "neg_log_prob_theta_star": value,
                                 "median_distance": value / 2, "acceptance_rate": accept, "c2st_final": c2st,
                                 "seconds_total": float(r)})
    return pd.DataFrame(rows)


def verdicts(table, last=5):
    rows = paper_findings.comparison_rows(paper_findings.per_cell(
        table.assign(budget=f"{ROUNDS}×1000"), last))
    return {(r["finding"], r["task"].split()[0], r["metric"]): r["verdict"] for r in rows}


def test_findings_verdicts_follow_the_later_rounds():
    got = verdicts(synthetic())
    assert len(got) == len(paper_findings.COMPARISONS) * len(TASKS) * 2
    k = "1. larger K is better: "
    want = {k + "SNPE-C K = 100 vs K = 2": "reproduced", k + "SNPE-C K = 100 vs K = 50": "not resolved",
            k + "SRE K = 100 vs K = 2": "refuted", k + "SRE K = 100 vs K = 50": "not resolved",
            "2. SNPE-C ≈ SRE (K = 100)": "reproduced", "3. SNL beats SRE (K = 100)": "refuted",
            "5. SNPE-C with MCMC ≈ i.i.d. sampling": "reproduced"}
    assert got == {(c, t, m): v for c, v in want.items() for t in TASKS for m in paper_findings.METRICS.values()}
    # all rounds averaged, round 1's opposite ranking wins: the verdicts flip
    assert verdicts(synthetic(), last=ROUNDS)[("3. SNL beats SRE (K = 100)", "mg1", "−log p(θ*)")] == "reproduced"


def test_the_zoos_other_estimators_are_compared_with_the_papers():
    rows = paper_findings.comparison_rows(paper_findings.per_cell(synthetic().assign(budget="6×1000")),
                                          paper_findings.BEYOND)
    got = {(r["finding"].split(":")[1].strip(), r["task"]) for r in rows if r["verdict"] == "reproduced"}
    assert got == {("AEM vs MAF (K = 100)", t) for t in TASKS}
    assert {r["verdict"] for r in rows if r["finding"].startswith("SNL")} == {"refuted"}
    # an arm that leaves a setting open must not pair two cells of one seed with each other
    cells = paper_findings.per_cell(synthetic().assign(budget="6×1000"))
    aem = cells[cells.estimator == "aem"]
    with pytest.raises(ValueError, match="AEM vs MAF.*several cells at one seed"):
        paper_findings.comparison_rows(pd.concat([cells, aem.assign(sample_with="mcmc")]), paper_findings.BEYOND)
    report = paper_findings.findings(synthetic())
    section = report[report.index("## Beyond the paper"):report.index("## Sanity check")]
    assert section.count("A better") == section.count("B better") == section.count("no difference detected") == 6
    rows = [line for line in section.splitlines() if line.startswith("| SN")]
    assert all(line.endswith("| A better |") for line in rows if "AEM vs MAF" in line)
    assert all(line.endswith("| B better |") for line in rows if line.startswith("| SNL: NSF vs MAF"))


def test_one_seed_gives_no_verdict_and_acceptance_counts_tasks():
    assert set(verdicts(synthetic(seeds=[0])).values()) == {"too few seeds"}
    table = synthetic()
    report = paper_findings.findings(table)
    assert "reproduced: acceptance ≤ 3% on 2 of 3 tasks" in report
    rows = paper_findings.acceptance_rows(table.assign(budget="6×1000"))
    assert [r["MAF ≤ 3%"] for r in rows] == [True, False, True]
    assert rows[0]["NSF (box)"].startswith("1 ± 0") and rows[2]["NSF (box)"] == "—"
    two_budgets = pd.concat([table, table[table.task == "nonlinear_gaussian"].assign(rounds=ROUNDS + 1)])
    assert "reproduced: acceptance ≤ 3% on 2 of 3 tasks" in paper_findings.findings(two_budgets)
    lv_low = table[table.task != "lotka_volterra"]
    assert "not resolved: SNPE-C + MAF ran on 2 of 3 tasks" in paper_findings.findings(lv_low)
    assert "Preset 'default'; cells: 0" in paper_findings.findings(table, preset="default")


def test_a_missing_seed_lowers_the_count_and_cannot_pass_a_claim():
    a, b = pd.Series([1.0, np.nan, 1.2]), pd.Series([5.0, 5.1, 4.9])
    d, welch, paired, n, verdict = paper_findings.compare(a, b, "same")
    assert verdict == "refuted" and d == pytest.approx(-3.85) and welch < 0.05 and paired < 0.05 and n == 2
    assert paper_findings.compare(pd.Series([1.0, np.nan]), b, "better")[3:] == (1, "too few seeds")


def test_the_verdict_pairs_arms_by_seed():
    # a seed effect (sd 1) shared by both arms hides a 0.2 gain from Welch's test, not from the pairs
    seeds = [3, 5, 7, 8, 11]
    shared = pd.Series(np.random.default_rng(1).standard_normal(len(seeds)), index=seeds)
    a = shared - 0.2 + 0.02 * np.array([1, -1, 0.5, -0.5, 0])
    d, welch, paired, n, verdict = paper_findings.compare(a, shared, "better")
    assert d == pytest.approx(-0.2) and welch > 0.5 and paired < 1e-4 and n == 5 and verdict == "reproduced"
    # the pairs are matched by seed, not by position: b listed in another order changes nothing
    assert paper_findings.compare(a, shared.iloc[::-1], "better")[2] == pytest.approx(paired)
    # pairing the wrong seeds loses the gain
    shuffled = pd.Series(shared.to_numpy()[[1, 2, 3, 4, 0]], index=seeds)
    assert paper_findings.compare(a, shuffled, "better")[2] > 0.1
    # only the seeds both arms finished are paired, and the difference is theirs
    assert paper_findings.compare(a, shared.drop([3, 5]), "better")[::3] == (pytest.approx(-0.2), 3)
    assert paper_findings.findings(pd.DataFrame()).endswith("No rows yet.\n")


def test_round_one_is_checked_against_the_protocols_reference_values():
    # NG round 1 at two seeds, two cells each: per-seed means 10.0 and 11.0 (−log p), 11.7 and 15.7
    rows = [{"task": "nonlinear_gaussian", "budget": "6×500", "round": 1, "seed": seed,
             "neg_log_prob_theta_star": nlp, "median_distance": md}
            for seed, nlp, md in [(0, 9.5, 11.6), (0, 10.5, 11.8), (1, 11.0, 15.7), (1, 11.0, 15.7)]]
    rows.append({**rows[0], "round": 2, "neg_log_prob_theta_star": 100.0})  # later rounds are not round 1
    got = {r["metric"]: r for r in paper_findings.round_one_rows(pd.DataFrame(rows))}
    nlp, md = got["−log p(θ*)"], got["median distance"]
    se = math.sqrt(1 / 2 + 1 / 20)  # two seeds against the reference's 20 repetitions
    assert nlp["ours, round 1"] == "10.5 ± 0.71 (n=2)" and nlp["z"] == f"{(10.5 - 9.97) / (0.99 * se):+.2f}" == "+0.72"
    assert nlp["check"] == "consistent"
    assert md["z"] == f"{(13.7 - 11.71) / (0.19 * se):+.2f}" and md["check"] == "differs"
    assert "Sanity check: round 1" in paper_findings.findings(synthetic())


def test_headline_numbers_are_the_final_rounds_over_seeds():
    table = synthetic()
    rows = {(r["task"], r["arm"]): r for r in paper_findings.headline_rows(table.assign(budget="6×1000"))}
    assert len(rows) == len(ARMS) * len(TASKS) - 1  # no box NSF on M/G/1
    snl = rows[("mg1", "SNL MAF")]
    final = 7.0 + 0.05 * np.random.default_rng(0).standard_normal((4, ROUNDS + 1))[:, ROUNDS]
    assert snl["final −log p(θ*)"] == f"{final.mean():.3g} ± {final.std(ddof=1):.2g} (n=4)"
    assert snl["median seconds per cell"] == "21"  # rounds 1 + 2 + ... + 6, not the last round's alone
    assert rows[("nonlinear_gaussian", "SNL MAF")]["C2ST, final draws"] == "0.8 ± 0 (n=4)"
    assert snl["C2ST, final draws"] == "—"


def test_runs_that_rejection_gave_up_on_count_in_finding_4(tmp_path):
    stop = ("sbi_lite.samplers.rejection.LowAcceptanceError: rejection sampling accepted 6 of 500000 draws "
            "(0.00%), short of the 500 wanted")
    lv = dict(task="lotka_volterra", method="snpe", estimator="maf", rounds=ROUNDS, simulations=1000)
    errors = {Cell(**lv, num_atoms=100, seed=4, sample_with="rejection"): (5, stop),   # a later round: counts
              Cell(**lv, num_atoms=100, seed=5, sample_with="rejection"): (2, stop),   # round 2: listed only
              Cell(**lv, num_atoms=2, seed=4, sample_with="rejection"): (5, stop),     # another arm
              Cell(**lv, num_atoms=100, seed=6, sample_with="mcmc"): (4, "RuntimeError: only 69 of 500"),
              Cell(**lv, num_atoms=100, seed=7, sample_with="rejection"): (5, stop),   # finished since
              # a budget with no finished rows at all still gets its row
              Cell(**dict(lv, rounds=9), num_atoms=100, seed=0, sample_with="rejection"): (8, stop)}
    for cell, (failed_in, error) in errors.items():
        folder = tmp_path / "cells" / cell.id
        folder.mkdir(parents=True)
        (folder / "error.txt").write_text(f"failed in round {failed_in}\nTraceback (most recent call last):\n{error}\n")
    (tmp_path / "cells" / Cell(**lv, num_atoms=100, seed=7, sample_with="rejection").id / "rounds.csv").write_text("")
    failures = paper_findings.read_failures(tmp_path)
    assert len(failures) == 5 and 7 not in set(failures["seed"])
    assert sorted(failures["failed_in_round"]) == [2, 4, 5, 5, 8]
    assert failures["acceptance_rate"].isna().sum() == 1 and failures["acceptance_rate"].max() == 6 / 500_000
    table = synthetic()
    rows = {(r["task"], r["budget"]): r for r in paper_findings.acceptance_rows(
        paper_findings._with_budget(table, "paper"), paper_findings._with_budget(failures, "paper"))}
    got = rows[("lotka_volterra", f"{ROUNDS}×1000")]
    assert got["MAF runs stopped by rejection"] == "seed 4 in round 5, seed 5 in round 2"
    # seeds 0-3 reach 0.5 at worst in the later rounds; seed 4 stopped at 6 / 500,000; seed 5 too early
    assert got["MAF: lowest acceptance, later rounds"].startswith(f"{(4 * 0.5 + 1.2e-5) / 5:.3g} ±")
    assert got["MAF: lowest acceptance, later rounds"].endswith("(n=5)")
    assert rows[("lotka_volterra", "9×1000")]["MAF: lowest acceptance, later rounds"] == "1.2e-05 (n=1)"
    assert rows[("mg1", f"{ROUNDS}×1000")]["MAF runs stopped by rejection"] == "—"
    report = paper_findings.findings(table, failures=failures)
    assert "5 cells raised and have no rows" in report and "RuntimeError: only 69 of 500" in report
    # another preset's report lists none of these failures
    assert "Cells that failed" not in paper_findings.findings(table.assign(preset="default"), preset="default",
                                                              failures=failures)
