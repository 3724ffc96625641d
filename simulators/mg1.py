"""M/G/1 queue: 50 customers, uniform service times, exponential inter-arrival times.

θ = (θ1, θ2, θ3): service ~ U(θ1, θ2), arrivals at rate θ3. The prior is uniform on a box in
u = (θ1, θ2 − θ1, θ3), so its support in θ is not a box. Summaries are the 0/25/50/75/100th
percentiles of the inter-departure times, whitened with the paper's pilot-run PCA.
"""

from __future__ import annotations

import numpy as np
import torch

from sbi_lite.priors import AffineBoxUniform
from simulators.task import Task

__all__ = ["THETA_TRUE", "X0", "X0_RAW", "simulate", "whiten", "inter_departure_times", "task"]

THETA_TRUE = np.array([1.0, 5.0, 0.2])
N_CUSTOMERS = 50
PERCENTILES = np.array([0.0, 25.0, 50.0, 75.0, 100.0])
MEANS = np.array([5.603234325370021, 16.107032258552668, 32.50289819710783, 57.74035798901813,
                  185.078850661258])
U = np.array([
    [0.00157097513721181, 0.0064377295054526135, 0.9964273277620008, 0.029757086033113816, 0.0787602945387488],
    [0.05240408063458723, -0.06298405883548136, -0.009529410008945529, 0.9670835169308942, -0.24071867873284594],
    [0.1405825872694616, -0.5040348960039842, 0.07457798874217113, -0.242225305249023, -0.8136033338544593],
    [0.25994724465162494, -0.8081792277096052, -0.038434646592266176, 0.06314790642870316, 0.523267508786594],
    [0.9538948110376817, 0.29797101114098723, -0.0016347386517975848, -0.03468761338114704, -0.0095949519260637],
])
ISTDS = np.array([0.00010186778755424188, 0.0015912190224202712, 0.07446486280591076,
                  0.008847935589549135, 0.015420789214655277])
X0 = np.array([-0.017766465645959184, 0.01378771262320085, -0.31679026862458826,
               -0.032905872280447446, 0.008509221101873415])
X0_RAW = np.array([1.0788, 2.7327, 3.7515, 5.6183, 21.4254])  # as given, to 4 decimals


def whiten(percentiles: np.ndarray) -> np.ndarray:
    """Raw percentiles (..., 5) -> whitened statistics (..., 5)."""
    return ((percentiles - MEANS) @ U) * ISTDS


def inter_departure_times(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) -> (n, 50) inter-departure times."""
    n = len(theta)
    service = theta[:, :1] + (theta[:, 1:2] - theta[:, :1]) * rng.random((n, N_CUSTOMERS))
    with np.errstate(divide="ignore"):
        inter_arrival = rng.exponential(size=(n, N_CUSTOMERS)) / theta[:, 2:3]
    arrivals = np.cumsum(inter_arrival, axis=1)
    d = np.empty((n, N_CUSTOMERS))
    departed = np.zeros(n)
    for i in range(N_CUSTOMERS):  # sequential in customers, vectorised over the batch
        d[:, i] = service[:, i] + np.maximum(0.0, arrivals[:, i] - departed)
        departed = departed + d[:, i]
    return d


def simulate(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Whitened percentile statistics for θ (n, 3) -> (n, 5).

    Example:
        >>> simulate(THETA_TRUE[None], np.random.default_rng(0)).shape
        (1, 5)
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    return whiten(np.percentile(inter_departure_times(theta, rng), PERCENTILES, axis=1).T)


def prior() -> AffineBoxUniform:
    matrix = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return AffineBoxUniform(torch.zeros(3), torch.tensor([10.0, 10.0, 1 / 3]), matrix)


def task() -> Task:
    return Task(name="mg1", prior=prior(), simulator=simulate, x0=X0.copy(), theta_true=THETA_TRUE.copy())
