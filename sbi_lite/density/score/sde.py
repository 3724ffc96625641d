"""Forward SDEs dy = f(y, t) dt + g(t) dw on t ∈ [ε, 1] as pure schedules (Song et al. 2021),
with the importance sampler of t for likelihood weighting (Song, Durkan et al. 2021).

Each SDE gives the Gaussian transition kernel p_0t(y'|y) = N(m(t) y, σ_t² I), the drift's
divergence per dimension, g(t)², and a sampler of t ∝ g(t)²/σ_t² with its normaliser Z, under
which the likelihood-weighted loss becomes Z·‖σ_t s(y_t, t) + z‖².
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["VPSDE", "SubVPSDE", "VESDE", "SDE"]


def _device(generator: torch.Generator | None) -> torch.device:
    # times are drawn on the CPU (or the generator's device), never on a global default device
    return generator.device if generator is not None else torch.device("cpu")


def _log_expm1(x: Tensor) -> Tensor:
    # log(e^x − 1), accurate for small and large x
    return torch.where(x > 20, x, torch.log(torch.expm1(x.clamp_min(1e-30))))


class SDE:
    """Interface. ``t`` is a tensor (...,); every method broadcasts."""

    def mean_coeff(self, t: Tensor) -> Tensor: ...
    def std(self, t: Tensor) -> Tensor: ...
    def g2(self, t: Tensor) -> Tensor: ...
    def drift_coeff(self, t: Tensor) -> Tensor:
        """f(y, t) = drift_coeff(t) · y (all three SDEs are linear in y)."""
    def prior_std(self) -> float: ...
    def _cdf(self, t: Tensor) -> Tensor:
        """Unnormalised CDF of p(t) ∝ g²/σ² from ε... up to an additive constant."""

    def z(self, eps: float) -> float:
        """Z = ∫_ε^1 g(t)²/σ_t² dt."""
        t = torch.tensor([eps, 1.0], dtype=torch.float64, device="cpu")
        c = self._cdf(t)
        return float(c[1] - c[0])

    def sample_time(self, n: int, eps: float, generator: torch.Generator | None = None) -> Tensor:
        """t ~ p(t) ∝ g²/σ² on [ε, 1] by inverting the CDF (bisection; closed form for VP), on
        ``generator``'s device (the CPU without one: the same times on every device); callers
        move t to their data."""
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=_device(generator))
        lo_c = self._cdf(torch.tensor(eps, dtype=torch.float64, device=u.device))
        target = lo_c + u * self.z(eps)
        lo, hi = torch.full_like(u, eps), torch.ones_like(u)
        for _ in range(60):
            mid = (lo + hi) / 2
            below = self._cdf(mid) < target
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return ((lo + hi) / 2).float()


class VPSDE(SDE):
    """Variance preserving: f = −½β(t)y, g² = β(t), m = e^{−B/2}, σ² = 1 − e^{−B}."""

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        self.beta_min, self.beta_max = beta_min, beta_max

    def beta(self, t: Tensor) -> Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def big_b(self, t: Tensor) -> Tensor:
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def mean_coeff(self, t):
        return torch.exp(-0.5 * self.big_b(t))

    def std(self, t):
        return torch.sqrt(-torch.expm1(-self.big_b(t)))

    def g2(self, t):
        return self.beta(t)

    def drift_coeff(self, t):
        return -0.5 * self.beta(t)

    def prior_std(self):
        return 1.0

    def _cdf(self, t):
        return _log_expm1(self.big_b(t))

    def sample_time(self, n, eps, generator=None):
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=_device(generator))
        lo_c = self._cdf(torch.tensor(eps, dtype=torch.float64, device=u.device))
        b_star = torch.nn.functional.softplus(lo_c + u * self.z(eps))
        db = self.beta_max - self.beta_min
        return ((-self.beta_min + torch.sqrt(self.beta_min**2 + 2 * db * b_star)) / db).float()


class SubVPSDE(VPSDE):
    """sub-VP: g² = β(1 − e^{−2B}), σ² = (1 − e^{−B})²; same drift and mean as VP."""

    def std(self, t):
        return -torch.expm1(-self.big_b(t))

    def g2(self, t):
        return self.beta(t) * -torch.expm1(-2 * self.big_b(t))

    def _cdf(self, t):
        return 2 * _log_expm1(self.big_b(t)) - self.big_b(t)

    sample_time = SDE.sample_time


class VESDE(SDE):
    """Variance exploding: f = 0, σ(t) = σ_min (σ_max/σ_min)^t, g² = dσ²/dt."""

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0):
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self.log_ratio = math.log(sigma_max / sigma_min)

    def mean_coeff(self, t):
        return torch.ones_like(t)

    def std(self, t):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def g2(self, t):
        return 2 * self.log_ratio * self.std(t) ** 2

    def drift_coeff(self, t):
        return torch.zeros_like(t)

    def prior_std(self):
        return self.sigma_max

    def _cdf(self, t):
        return 2 * self.log_ratio * t
