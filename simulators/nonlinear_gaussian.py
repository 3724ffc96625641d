"""Nonlinear Gaussian ("SLCP"): a simple likelihood with a complex posterior.

θ ∈ R^5 with U(−3, 3) priors. x holds 4 i.i.d. 2-D points from N(m, S) with m = (θ1, θ2),
standard deviations s1 = θ3², s2 = θ4² and correlation ρ = tanh(θ5), flattened point by point.
The likelihood is exact, which is what makes this task's reference posterior possible.
"""

from __future__ import annotations

import numpy as np
import torch

from sbi_lite.priors import BoxUniform
from simulators.task import Task

__all__ = ["THETA_TRUE", "X0", "simulate", "log_likelihood", "make_x0", "task"]

THETA_TRUE = np.array([-0.7, -2.9, -1.0, -0.9, 0.6])
N_POINTS = 4


def _moments(theta):
    lib = torch if isinstance(theta, torch.Tensor) else np
    s1, s2 = theta[..., 2] ** 2, theta[..., 3] ** 2
    rho = lib.tanh(theta[..., 4])
    return theta[..., 0], theta[..., 1], s1, s2, rho


def _from_noise(theta: np.ndarray, u: np.ndarray) -> np.ndarray:
    """x from standard-normal draws u (n, 4, 2), last axis (u_a, u_b)."""
    m1, m2, s1, s2, rho = (v[:, None] for v in _moments(theta))
    xa = m1 + s1 * u[..., 0]
    xb = m2 + s2 * (rho * u[..., 0] + np.sqrt(1 - rho**2) * u[..., 1])
    return np.stack([xa, xb], axis=-1).reshape(len(theta), 2 * N_POINTS)


def simulate(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """x ~ p(x|θ) for θ (n, 5) -> (n, 8).

    Example:
        >>> simulate(THETA_TRUE[None], np.random.default_rng(0)).shape
        (1, 8)
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    return _from_noise(theta, rng.standard_normal((len(theta), N_POINTS, 2)))


def make_x0() -> np.ndarray:
    """The paper's observation: one run at θ* with ``RandomState(41).randn(1, 4, 2)``."""
    return _from_noise(THETA_TRUE[None], np.random.RandomState(41).randn(1, N_POINTS, 2))[0]


def log_likelihood(theta, x):
    """Exact log p(x|θ), batched: θ (n, 5) with x (n, 8) or (8,) -> (n,).

    numpy in, numpy out; torch in, torch out (differentiable).
    """
    lib = torch if isinstance(theta, torch.Tensor) else np
    if lib is torch:
        x = torch.as_tensor(x, dtype=theta.dtype)
    m1, m2, s1, s2, rho = (v[..., None] for v in _moments(theta))
    pts = x.reshape(*x.shape[:-1], N_POINTS, 2)
    ua = (pts[..., 0] - m1) / s1
    ub = (pts[..., 1] - m2 - s2 * rho * ua) / (s2 * lib.sqrt(1 - rho**2))
    log_phi = -0.5 * (ua**2 + ub**2) - np.log(2 * np.pi)
    logdet = lib.log(s1) + lib.log(s2) + 0.5 * lib.log(1 - rho**2)
    return (log_phi - logdet).sum(-1)


X0 = make_x0()


def task() -> Task:
    return Task(
        name="nonlinear_gaussian",
        prior=BoxUniform(-3 * torch.ones(5), 3 * torch.ones(5)),
        simulator=simulate,
        x0=X0.copy(),
        theta_true=THETA_TRUE.copy(),
        log_likelihood=log_likelihood,
    )
