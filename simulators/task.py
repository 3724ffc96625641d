"""The Task record: what a benchmark or a user needs to run one inference problem."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from sbi_lite.priors import Prior

__all__ = ["Task"]


@dataclass(frozen=True)
class Task:
    """One simulation-based inference problem.

    Attributes:
        name: registry name.
        prior: the prior over θ (d,).
        simulator: ``simulator(theta (n, d) ndarray, rng: numpy Generator) -> (n, d_x) ndarray``,
            a row of NaN for a failed run.
        x0: the observation (d_x,), in the space the simulator outputs (normalised/whitened).
        theta_true: θ* (d,), the parameters x0 was generated from.
        log_likelihood: ``f(theta (n, d), x (n, d_x) or (d_x,)) -> (n,)`` where tractable, else None.
    """

    name: str
    prior: Prior
    simulator: Callable[..., np.ndarray]
    x0: np.ndarray
    theta_true: np.ndarray
    log_likelihood: Callable | None = None

    @property
    def dim_theta(self) -> int:
        return len(self.theta_true)

    @property
    def dim_x(self) -> int:
        return len(self.x0)
