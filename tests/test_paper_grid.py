"""Smoke test of the paper grid (benchmarks/paper_grid.py, paper_figures.py): a tiny grid runs,
its CSVs have every column with finite metrics where they must be, finished cells are never
rerun, an interrupted cell resumes from its checkpoint without re-simulating, figures render."""

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import paper_figures  # noqa: E402
import paper_findings  # noqa: E402
import paper_grid  # noqa: E402
from _grid_cells import Cell, experiment_cells, grid_cells  # noqa: E402
from _grid_metrics import HISTORY_COLUMNS, METRIC_COLUMNS  # noqa: E402

from sbi_lite.diagnostics import kde_nll, median_distance  # noqa: E402
from sbi_lite.inference.checkpoint import read_checkpoint  # noqa: E402

TINY = dict(rounds=2, simulations=200)
CELLS = [Cell("nonlinear_gaussian", "snpe", "maf", 10, 0, sample_with="rejection", **TINY),
         # SNPE-C again: SRE's and SNL's slice-sampling burn-in alone takes ~10 s (run by hand, see the report)
         Cell("mg1", "snpe", "maf", 2, 0, sample_with="rejection", **TINY)]
CONFIG_COLUMNS = ["cell", "arm", "task", "method", "estimator", "num_atoms", "seed", "rounds", "simulations",
                  "sample_with", "leakage_free", "preset"]


def fast(out: Path) -> "paper_grid.GridOptions":
    return paper_grid.GridOptions(out=out, final_draws=300, max_epochs=3, chains=20)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    results = paper_grid.run_grid(CELLS, fast(out), jobs=1, progress=False)  # one worker process
    return out, results


def test_cells_expand_the_grid_and_the_experiments():
    cells = grid_cells(["mg1"], ["snpe", "sre", "snl"], ["maf", "diffusion"], [2, 100], [0], sample_with=["mcmc"],
                       leakage_free=[False, True], **TINY)
    ids = [c.id for c in cells]
    # SRE: no estimator; SNL: no K, no diffusion; no box MAF or diffusion; no MCMC on a diffusion model
    assert ids == ["mg1_snpe-maf_k2_mcmc_paper_r2x200_s0", "mg1_snpe-maf_k100_mcmc_paper_r2x200_s0",
                   "mg1_sre-classifier_k2_auto_paper_r2x200_s0", "mg1_sre-classifier_k100_auto_paper_r2x200_s0",
                   "mg1_snl-maf_k-_auto_paper_r2x200_s0"]
    paper = experiment_cells(["paper"], seeds=[0])
    # per task: 6 of fig1, + box NSF (not on M/G/1, whose prior is no box), + SNL, + SNPE-C MCMC
    assert len(paper) == 3 * 9 - 1
    assert {(c.task, c.rounds, c.simulations) for c in paper} == {
        ("nonlinear_gaussian", 25, 1000), ("lotka_volterra", 20, 1000), ("mg1", 25, 1000)}
    assert len(experiment_cells(["paper"])) == 10 * len(paper)  # the paper's 10 seeds
    beyond = {c.arm for c in experiment_cells(["beyond"], tasks=["mg1"], seeds=[0])}
    assert {"SNPE-C AEM rejection", "SNPE-C DIFFUSION rejection", "SNL NSF"} <= beyond
    args = paper_grid.parse_args(["--experiment", "fig2", "--tasks", "lotka_volterra", "mg1", "--seeds", "3"])
    assert [(c.task, c.arm) for c in paper_grid.cells_from_args(args)] == [
        ("lotka_volterra", "SNPE-C MAF K=100 rejection"), ("lotka_volterra", "SNPE-C NSF (box) K=100 rejection"),
        ("mg1", "SNPE-C MAF K=100 rejection")]
    with pytest.raises(ValueError, match="unknown task 'ng'"):
        grid_cells(["ng"], ["snpe"], ["maf"], [100], [0])


def test_rows_have_every_column_and_finite_metrics(grid):
    out, results = grid
    assert results == {c.id: "done" for c in CELLS}
    table = pd.read_csv(out / paper_grid.COMBINED)
    for column in CONFIG_COLUMNS + HISTORY_COLUMNS + METRIC_COLUMNS:
        assert column in table.columns, column
    assert len(table) == 4 and sorted(table["cell"].unique()) == sorted(c.id for c in CELLS)
    for column in ["neg_log_prob_theta_star", "median_distance", "seconds_propose", "seconds_simulate",
                   "seconds_train", "seconds_total", "epochs"]:
        assert np.isfinite(table[column]).all(), column
    assert (table["simulated"] == 200).all() and (table["theta_in_round"] == 200).all() and (table["failed"] == 0).all()
    ng, mg1 = table[table.task == "nonlinear_gaussian"], table[table.task == "mg1"]
    assert np.isfinite(ng["mmd2"]).all() and ng["c2st_round"].between(0.3, 1.0).all()
    assert mg1[["mmd2", "c2st_round", "c2st_final"]].isna().all().all()  # no reference posterior
    assert ng["c2st_final"].isna().tolist() == [True, False] and 0.3 < ng["c2st_final"].iloc[-1] <= 1.0
    # acceptance: round 1 proposes from the prior, round 2 by rejection from q(θ|x0)
    assert math.isnan(ng["acceptance_rate"].iloc[0]) and 0 < ng["acceptance_rate"].iloc[1] <= 1
    assert ng["num_atoms"].tolist() == [10, 10] and mg1["num_atoms"].tolist() == [2, 2]
    # the metrics of round r are those of the θ simulated in round r, read back from the checkpoint
    store = read_checkpoint(out / "cells" / CELLS[0].id / "checkpoint.pt")["store"]
    for r in (1, 2):
        in_round = store["round"].numpy() == r - 1
        theta, x = store["theta"].double().numpy()[in_round], store["x"].double().numpy()[in_round]
        row = ng[ng["round"] == r].iloc[0]
        assert row["neg_log_prob_theta_star"] == pytest.approx(kde_nll(theta, [-0.7, -2.9, -1.0, -0.9, 0.6]))
        assert row["median_distance"] == pytest.approx(median_distance(x, _ng_x0()))
    assert ng["neg_log_prob_theta_star"].iloc[0] != ng["neg_log_prob_theta_star"].iloc[1]


def _ng_x0():
    from simulators import get_task

    return get_task("nonlinear_gaussian").x0


def test_finished_cells_are_never_rerun(grid):
    out, _ = grid
    files = [p for c in CELLS for p in (out / "cells" / c.id).glob("*")]
    before = {p: p.stat().st_mtime_ns for p in files}
    assert paper_grid.run_grid(CELLS, fast(out), jobs=1, progress=False) == {}
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert paper_grid.run_cell(CELLS[0], fast(out)) == "skipped"


def test_an_interrupted_cell_resumes_without_resimulating(tmp_path, monkeypatch):
    import simulators
    import sbi_lite.inference.rounds as rounds

    cell = dataclasses.replace(CELLS[0], estimator="nsf", seed=1)
    simulated = []
    real_get_task = simulators.get_task

    def counting_task(name):
        task = real_get_task(name)

        def simulator(theta, rng):
            simulated.append(len(theta))
            return task.simulator(theta, rng)

        return dataclasses.replace(task, simulator=simulator)

    real_train, calls = rounds.train, []

    def train_then_die(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # round 2 simulated and checkpointed mid-round, then the process "dies"
            raise RuntimeError("killed during training")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(simulators, "get_task", counting_task)
    monkeypatch.setattr(rounds, "train", train_then_die)
    options = fast(tmp_path)
    status = paper_grid.run_cell(cell, options)
    folder = tmp_path / "cells" / cell.id
    assert status.startswith("error: RuntimeError: killed during training")
    assert (folder / "error.txt").read_text().startswith("failed in round 2\n")
    failed = paper_findings.read_failures(tmp_path)
    assert failed[["cell", "failed_in_round", "error"]].values.tolist() == [
        [cell.id, 2, "RuntimeError: killed during training"]]
    assert not (folder / "rounds.csv").exists() and not paper_grid.is_finished(tmp_path, cell)
    partial = read_checkpoint(folder / "checkpoint.pt")
    assert partial["round"] == 1 and partial["partial"]  # round 1 done, round 2's simulations stored
    first_run = sum(simulated)

    monkeypatch.setattr(rounds, "train", real_train)
    simulated.clear()
    assert paper_grid.run_grid([cell], options, jobs=0, progress=False) == {cell.id: "done"}
    assert sum(simulated) <= 1  # only infer's one-draw output-size probe: both rounds came from the checkpoint
    assert first_run >= 400 and not (folder / "error.txt").exists()
    rows = pd.read_csv(folder / "rounds.csv")
    assert rows["round"].tolist() == [1, 2] and np.isfinite(rows["neg_log_prob_theta_star"]).all()
    final = read_checkpoint(folder / "checkpoint.pt")["store"]
    assert len(final["theta"]) == 400 and (final["theta"][:200] == partial["store"]["theta"]).all()


def test_figures_render(grid):
    out, _ = grid
    paths = paper_figures.main(["--out", str(out)])
    names = {p.name for p in paths}
    # fig1 holds SNPE-C with K = 2 (the mg1 cell); no other experiment has either tiny cell
    assert names == {"grid_metrics.png", "grid_acceptance.png", "grid_ng_c2st.png", "fig1_metrics.png",
                     "fig1_acceptance.png"}
    for path in paths:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, path


def test_findings_read_the_runners_csv(grid):
    out, _ = grid
    report = paper_findings.main(["--out", str(out)]).read_text()
    # two single-seed cells on two tasks, at K = 10 and 2: no comparison has both arms
    assert "cells: 2; seeds per task: {'mg1': 1, 'nonlinear_gaussian': 1}" in report
    assert "No finding has both of its arms yet." in report
    assert "No SNPE-C + MAF (K = 100, i.i.d.) rows yet." in report


def test_a_cells_id_names_it_exactly():
    cells = experiment_cells(["all"], seeds=[0, 12], rounds=6, simulations=500) + grid_cells(
        ["lotka_volterra"], ["snpe"], ["nsf_ar"], [7], [3], sample_with=["mcmc", "rejection"], leakage_free=[True, False])
    assert len({c.id for c in cells}) == len(cells) > 60
    assert all(Cell.from_id(c.id) == c for c in cells)
    with pytest.raises(ValueError, match="not a cell id"):
        Cell.from_id("lotka_volterra_snpe-maf_k100_rejection_paper_r6x500")


def test_an_arm_keeps_its_colour_and_legend_entry_on_every_panel():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = {"a": Cell("mg1", "snpe", "maf", 100, 0, 2, 10), "b": Cell("mg1", "sre", "classifier", 100, 0, 2, 10)}
    rows = pd.DataFrame([{**cells[arm].columns(), "task": task, "round": r, "metric": float(r)}
                         for task, arms in (("nonlinear_gaussian", "ab"), ("mg1", "b")) for arm in arms for r in (1, 2)])
    colors = paper_figures._colors(rows)
    fig, (left, right) = plt.subplots(1, 2)
    for ax, task in ((left, "nonlinear_gaussian"), (right, "mg1")):
        paper_figures._curves(ax, rows[rows.task == task], "metric", colors)
    sre = cells["b"].arm
    assert left.lines[1].get_color() == right.lines[0].get_color() == colors[sre] != colors[cells["a"].arm]
    paper_figures._legend(right, rows, colors)
    assert [t.get_text() for t in right.get_legend().get_texts()] == [f"{cells['a'].arm} (n=1)", f"{sre} (n=1)"]
    plt.close(fig)


def test_two_budgets_of_one_arm_are_two_curves():
    short, long = Cell("mg1", "snpe", "maf", 100, 0, 2, 10), Cell("mg1", "snpe", "maf", 100, 0, 3, 10)
    rows = pd.DataFrame([short.columns(), long.columns()])
    assert list(paper_figures._label(rows)) == [f"{short.arm} (2×10)", f"{long.arm} (3×10)"]
    assert list(paper_figures._label(rows.iloc[:1])) == [short.arm]  # one budget: no suffix
