"""Per-round metric rows of one finished cell (protocol.md, "Metrics, per round").

Every metric of round r is computed from what round r simulated: the θ drawn from the previous
round's posterior (round 1: the prior) and their simulations, read back from the run's
checkpoint, where every pair carries its round.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sbi_lite.diagnostics import c2st, kde_nll, median_distance, mmd_squared

__all__ = ["REFERENCE", "METRIC_COLUMNS", "HISTORY_COLUMNS", "ng_reference", "round_rows"]

REFERENCE = Path(__file__).parent / "reference" / "ng_observations.npz"
MMD_REFERENCE_DRAWS = 1000  # the protocol's reference sample size for MMD²
# metrics this module adds, and the history columns the rows keep
METRIC_COLUMNS = ["neg_log_prob_theta_star", "median_distance", "mmd2", "c2st_round", "c2st_final",
                  "theta_in_round"]
HISTORY_COLUMNS = ["round", "proposal", "simulated", "failed", "failure_reasons", "training", "epochs",
                   "best_validation_loss", "acceptance_rate", "posterior_change", "seconds_propose",
                   "seconds_simulate", "seconds_train", "seconds_total"]


def ng_reference(x0: np.ndarray) -> np.ndarray:
    """The exact posterior draws (10,000, 5) at the paper's NG x0 (observation 0 of the file)."""
    data = np.load(REFERENCE)
    if not np.allclose(data["x0"][0], x0):
        raise ValueError(f"observation 0 of {REFERENCE} is {data['x0'][0]}, not the task's x0 {x0}")
    return np.asarray(data["reference"][0], dtype=np.float64)


def _balanced_c2st(samples: np.ndarray, reference: np.ndarray, seed: int) -> float:
    # equal class sizes: with unequal ones a classifier beats 0.5 by predicting the larger class
    n = min(len(samples), len(reference))
    return c2st(torch.as_tensor(samples[:n]), torch.as_tensor(reference[:n]), seed=seed)


def round_rows(history: pd.DataFrame, theta: np.ndarray, x: np.ndarray, labels: np.ndarray, x0: np.ndarray,
               theta_star: np.ndarray, *, reference: np.ndarray | None = None, final_draws: np.ndarray | None = None,
               round_c2st: bool = True, seed: int = 0) -> pd.DataFrame:
    """One row per round: the history's columns plus every metric.

    Args:
        history: ``posterior.history`` (one row per round, ``round`` 1-based).
        theta, x, labels: all pairs (N, d), (N, d_x) and their 0-based round (N,).
        x0, theta_star: the observation (d_x,) and the true parameters (d,).
        reference: exact posterior draws (M, d) where known (NG): MMD² and C2ST, else NaN.
        final_draws: draws of the final posterior for the last row's ``c2st_final``.
        round_c2st: whether to run the (slower) C2ST of each round's θ against the reference.
        seed: for the C2ST classifiers.
    """
    rows = []
    for _, h in history.iterrows():
        r = int(h["round"])
        in_round = labels == r - 1
        th, xs = theta[in_round], x[in_round]
        # "simulated": the history's "simulations", renamed apart from the cell's budget column
        row = {k: h["simulations" if k == "simulated" else k] for k in HISTORY_COLUMNS}
        row["theta_in_round"] = int(in_round.sum())
        row["neg_log_prob_theta_star"] = kde_nll(th, theta_star) if len(th) else math.nan
        row["median_distance"] = median_distance(xs, x0) if len(xs) else math.nan
        has_ref = reference is not None and len(th) >= 2
        row["mmd2"] = mmd_squared(th, reference[:MMD_REFERENCE_DRAWS]) if has_ref else math.nan
        row["c2st_round"] = _balanced_c2st(th, reference, seed + r) if has_ref and round_c2st else math.nan
        row["c2st_final"] = math.nan
        rows.append(row)
    if rows and reference is not None and final_draws is not None:
        rows[-1]["c2st_final"] = _balanced_c2st(final_draws, reference, seed)
    return pd.DataFrame(rows)
