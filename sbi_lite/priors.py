"""Priors: box-uniform, uniform on a linear image of a box, and any torch Distribution.

Every prior honours one contract (``Prior``): ``sample(sample_shape, *, generator)`` in torch's
calling convention, ``log_prob(theta)`` that is ``-inf`` outside the support and never raises, and
``support_contains(theta)``, which rejection sampling calls. Nothing here changes torch's global
validation settings.

Devices: a prior's parameters live on the CPU. ``log_prob`` and ``support_contains`` answer on
θ's device, wherever θ is (a network trained on a GPU scores its θ against the prior there);
``sample`` draws on the generator's device (the CPU without one). A ``TorchPrior`` computes where
its distribution's parameters are.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from typing import Sequence

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent

from sbi_lite.devices import seeded_rng

__all__ = ["Prior", "BoxUniform", "AffineBoxUniform", "TorchPrior", "as_prior"]

Shape = int | Sequence[int] | torch.Size


def _shape(sample_shape: Shape) -> torch.Size:
    return torch.Size([sample_shape]) if isinstance(sample_shape, int) else torch.Size(sample_shape)


def _as_tensor(theta) -> Tensor:
    # a tensor keeps its device; anything else becomes a CPU tensor, not one on a global default
    if isinstance(theta, Tensor):
        return theta.to(torch.get_default_dtype())
    return torch.as_tensor(theta, dtype=torch.get_default_dtype(), device="cpu")


class Prior(ABC):
    """The prior contract. Subclasses implement ``_sample``, ``log_prob`` and ``support_contains``.

    Attributes:
        dim: number of parameters d.
        bounds: ``(low, high)`` tensors of shape (d,) when the support is an axis-aligned box in θ
            (estimators can then be built with exactly that support), else None.
    """

    dim: int
    bounds: tuple[Tensor, Tensor] | None = None

    def sample(self, sample_shape: Shape = (), *, generator: torch.Generator | None = None) -> Tensor:
        """Draw samples of shape ``(*sample_shape, d)``."""
        return self._sample(_shape(sample_shape), generator)

    @abstractmethod
    def _sample(self, shape: torch.Size, generator: torch.Generator | None) -> Tensor:
        """Draws of shape (*shape, d)."""

    @abstractmethod
    def log_prob(self, theta: Tensor) -> Tensor:
        """Log-density of θ (*B, d) -> (*B,); ``-inf`` outside the support."""

    @abstractmethod
    def support_contains(self, theta: Tensor) -> Tensor:
        """Boolean (*B,): whether each θ lies in the support."""

    def _check_dim(self, theta: Tensor) -> Tensor:
        theta = _as_tensor(theta)
        if theta.shape[-1:] != (self.dim,):
            raise ValueError(f"{type(self).__name__} has dimension {self.dim}; got θ of shape {tuple(theta.shape)}")
        return theta


class BoxUniform(Prior):
    """Independent uniform prior on the box [low, high] (a product of intervals).

    Args:
        low, high: bounds, each of shape (d,) (or scalars broadcast with each other).

    Example:
        >>> prior = BoxUniform(-torch.ones(2), torch.ones(2))
        >>> prior.sample((5,), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([5, 2])
        >>> prior.log_prob(torch.tensor([[0.0, 0.0], [2.0, 0.0]]))
        tensor([-1.3863,    -inf])
    """

    def __init__(self, low, high):
        # bounds given on a GPU are kept on the CPU, with every other prior parameter (module docstring)
        low, high = torch.broadcast_tensors(_as_tensor(low).reshape(-1).cpu(), _as_tensor(high).reshape(-1).cpu())
        if not bool(torch.all(high > low)):
            raise ValueError(f"BoxUniform needs high > low everywhere; got low={low.tolist()}, high={high.tolist()}")
        self.low, self.high = low.clone(), high.clone()
        self.dim = low.numel()
        self.bounds = (self.low, self.high)
        self._log_density = -torch.log(self.high - self.low).sum()
        self.mean = (self.low + self.high) / 2
        self.stddev = (self.high - self.low) / math.sqrt(12.0)

    def _sample(self, shape, generator):
        device = generator.device if generator is not None else self.low.device
        u = torch.rand(*shape, self.dim, generator=generator, dtype=self.low.dtype, device=device)
        return self.low.to(device) + (self.high - self.low).to(device) * u

    def support_contains(self, theta):
        theta = self._check_dim(theta)
        return ((theta >= self.low.to(theta.device)) & (theta <= self.high.to(theta.device))).all(-1)

    def log_prob(self, theta):
        theta = self._check_dim(theta)
        inside = self.support_contains(theta)
        return torch.where(inside, self._log_density.to(theta.device, theta.dtype), -math.inf)

    def __repr__(self) -> str:
        return f"BoxUniform(low={self.low.tolist()}, high={self.high.tolist()})"


class AffineBoxUniform(Prior):
    """Uniform on {θ : M θ ∈ [low, high]}: a box in u = M θ, generally not a box in θ.

    The density is ``|det M| / vol(box)`` on the support. The M/G/1 prior is this with
    u = (θ1, θ2 − θ1, θ3).

    Args:
        low, high: box bounds in u-space, shape (d,).
        matrix: invertible (d, d) matrix M.

    Example:
        >>> M = torch.tensor([[1.0, 0, 0], [-1, 1, 0], [0, 0, 1]])
        >>> prior = AffineBoxUniform(torch.zeros(3), torch.tensor([10.0, 10.0, 1 / 3]), M)
        >>> round(float(prior.log_prob(torch.tensor([1.0, 5.0, 0.2])).exp()), 6)
        0.03
    """

    def __init__(self, low, high, matrix):
        self.box = BoxUniform(low, high)
        self.matrix = _as_tensor(matrix).cpu()
        d = self.box.dim
        if self.matrix.shape != (d, d):
            raise ValueError(f"matrix must be ({d}, {d}); got {tuple(self.matrix.shape)}")
        logabsdet = torch.linalg.slogdet(self.matrix.double()).logabsdet
        if not torch.isfinite(logabsdet):
            raise ValueError("matrix must be invertible")
        self.inverse = torch.linalg.inv(self.matrix.double()).to(self.matrix.dtype)
        self.dim = d
        self._log_density = self.box._log_density + logabsdet.to(self.matrix.dtype)
        self.mean = self.inverse @ self.box.mean
        cov = self.inverse @ torch.diag(self.box.stddev**2) @ self.inverse.T
        self.stddev = cov.diagonal().sqrt()

    def to_box(self, theta: Tensor) -> Tensor:
        """u = M θ, shape preserved (on θ's device)."""
        return theta @ self.matrix.T.to(theta.device)

    def _sample(self, shape, generator):
        u = self.box._sample(shape, generator)
        return u @ self.inverse.T.to(u.device)

    def support_contains(self, theta):
        theta = self._check_dim(theta)
        return self.box.support_contains(self.to_box(theta))

    def log_prob(self, theta):
        theta = self._check_dim(theta)
        return torch.where(self.support_contains(theta), self._log_density.to(theta.device, theta.dtype), -math.inf)

    def __repr__(self) -> str:
        return f"AffineBoxUniform(low={self.box.low.tolist()}, high={self.box.high.tolist()}, matrix={self.matrix.tolist()})"


class TorchPrior(Prior):
    """Adapter for any ``torch.distributions.Distribution`` with a vector event.

    Univariate batch distributions (``event_shape == ()``, ``batch_shape == (d,)``) are treated as
    independent coordinates. Sampling with a generator runs inside ``torch.random.fork_rng`` so
    the global RNG is left untouched. The adapter works on a private copy with argument
    validation off, so ``log_prob`` outside the support returns ``-inf`` instead of raising.

    Example:
        >>> from torch.distributions import MultivariateNormal
        >>> prior = TorchPrior(MultivariateNormal(torch.zeros(2), torch.eye(2)))
        >>> prior.sample((3,), generator=torch.Generator().manual_seed(1)).shape
        torch.Size([3, 2])
    """

    def __init__(self, distribution: Distribution):
        dist = distribution
        if len(dist.event_shape) == 0:
            dist = Independent(dist.expand((1,)) if len(dist.batch_shape) == 0 else dist, 1)
        if len(dist.event_shape) != 1 or len(dist.batch_shape) != 0:
            raise ValueError(
                f"a prior needs one vector event; got batch_shape={tuple(dist.batch_shape)}, "
                f"event_shape={tuple(dist.event_shape)}"
            )
        self.distribution = copy.copy(dist)
        self.distribution._validate_args = False
        base = getattr(self.distribution, "base_dist", None)
        if base is not None:
            self.distribution.base_dist = copy.copy(base)
            self.distribution.base_dist._validate_args = False
        self.dim = int(dist.event_shape[0])
        self.mean = dist.mean
        self.stddev = dist.stddev
        support = dist.support
        if isinstance(support, torch.distributions.constraints.independent):
            support = support.base_constraint
        if isinstance(support, torch.distributions.constraints.interval):
            low, high = torch.broadcast_tensors(_as_tensor(support.lower_bound), _as_tensor(support.upper_bound))
            self.bounds = (low.expand(self.dim).clone(), high.expand(self.dim).clone())

    def _sample(self, shape, generator):
        if generator is None:
            return self.distribution.sample(shape)
        seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
        with seeded_rng(seed, self.mean.device):  # the distribution draws on its own device's RNG
            return self.distribution.sample(shape)

    def support_contains(self, theta):
        # a torch Distribution cannot be moved between devices: it is evaluated where its
        # parameters are, and the answer goes back to θ's device
        theta = self._check_dim(theta)
        ok = self.distribution.support.check(theta.to(self.mean.device))
        return (ok if ok.shape == theta.shape[:-1] else ok.all(-1)).to(theta.device)

    def log_prob(self, theta):
        theta = self._check_dim(theta)
        home = theta.to(self.mean.device)
        inside = self.support_contains(home)
        safe = torch.where(inside[..., None], home, self.mean.to(theta.dtype))
        return torch.where(inside, self.distribution.log_prob(safe), -math.inf).to(theta.device)

    def __repr__(self) -> str:
        return f"TorchPrior({self.distribution!r})"


def as_prior(prior) -> Prior:
    """Accept a ``Prior`` or any torch ``Distribution``; raise a clear error otherwise."""
    if isinstance(prior, Prior):
        return prior
    if isinstance(prior, Distribution):
        return TorchPrior(prior)
    raise TypeError(f"prior must be an sbi_lite Prior or a torch Distribution, got {type(prior).__name__}")
