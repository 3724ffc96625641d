"""The paper's simulation tasks: Nonlinear Gaussian, Lotka–Volterra and M/G/1.

Example:
    >>> task = get_task("mg1")
    >>> task.x0.shape, task.theta_true.shape
    ((5,), (3,))
"""

from __future__ import annotations

from simulators import lotka_volterra, mg1, nonlinear_gaussian
from simulators.task import Task

__all__ = ["Task", "get_task", "TASKS"]

TASKS = {
    "nonlinear_gaussian": nonlinear_gaussian.task,
    "lotka_volterra": lotka_volterra.task,
    "mg1": mg1.task,
}


def get_task(name: str) -> Task:
    """The task called ``name`` (one of ``TASKS``)."""
    try:
        return TASKS[name]()
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}") from None
