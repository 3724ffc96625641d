"""Invertible transforms. Every transform maps (inputs (B, D), context (B, C) or None) to
``(outputs, log|det J|)`` with the log-determinant of shape (B,), in both directions.

The density direction also takes any batch shape, inputs (*batch, D) with a context that
broadcasts against them, e.g. (B, 1, C) against (B, K, D): a context-only computation then runs
once per context row instead of once per pair (the contrastive loss's B·K pairs).

``forward`` is the density direction (data → base); ``inverse`` is the sampling direction.
"""

from __future__ import annotations

import math
from abc import abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sbi_lite.density.base import ModuleABC

__all__ = ["Transform", "CompositeTransform", "Permutation", "LULinear", "BatchNorm", "Standardize", "BoxToCube"]


class Transform(nn.Module, metaclass=ModuleABC):
    """Base class: subclasses implement ``forward`` and ``inverse``."""

    @abstractmethod
    def forward(self, inputs: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Density direction: (outputs, log|det J|)."""

    @abstractmethod
    def inverse(self, inputs: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Sampling direction: (outputs, log|det J|)."""


class CompositeTransform(Transform):
    """Apply transforms in order (forward) or in reverse order (inverse), summing log-dets."""

    def __init__(self, transforms: list[Transform]):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)

    def forward(self, inputs, context=None):
        total = inputs.new_zeros(inputs.shape[:-1])
        for t in self.transforms:
            inputs, logdet = t(inputs, context)
            total = total + logdet
        return inputs, total

    def inverse(self, inputs, context=None):
        total = inputs.new_zeros(inputs.shape[:-1])
        for t in reversed(self.transforms):
            inputs, logdet = t.inverse(inputs, context)
            total = total + logdet
        return inputs, total


class Permutation(Transform):
    """A fixed permutation of the features (log|det| = 0). ``permutation=None`` reverses."""

    def __init__(self, features: int, permutation: Tensor | None = None):
        super().__init__()
        perm = torch.arange(features - 1, -1, -1) if permutation is None else torch.as_tensor(permutation)
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))

    @classmethod
    def random(cls, features: int, generator: torch.Generator) -> Permutation:
        return cls(features, torch.randperm(features, generator=generator))

    def forward(self, inputs, context=None):
        return inputs[..., self.perm], inputs.new_zeros(inputs.shape[:-1])

    def inverse(self, inputs, context=None):
        return inputs[:, self.inv_perm], inputs.new_zeros(inputs.shape[0])


class LULinear(Transform):
    """y = L U x + b with L unit lower-triangular and U upper-triangular with a positive diagonal
    (softplus + 1e-3); the identity at initialisation. log|det| = Σ log U_ii, O(D)."""

    def __init__(self, features: int, eps: float = 1e-3):
        super().__init__()
        self.eps = eps
        self.register_buffer("lower_idx", torch.tril_indices(features, features, -1))
        self.register_buffer("upper_idx", torch.triu_indices(features, features, 1))
        self.lower_entries = nn.Parameter(torch.zeros(self.lower_idx.shape[1]))
        self.upper_entries = nn.Parameter(torch.zeros(self.upper_idx.shape[1]))
        self.raw_diag = nn.Parameter(torch.full((features,), math.log(math.expm1(1 - eps))))
        self.bias = nn.Parameter(torch.zeros(features))

    def factors(self) -> tuple[Tensor, Tensor]:
        eye = torch.eye(self.bias.numel(), dtype=self.bias.dtype, device=self.bias.device)
        lower = eye.index_put(tuple(self.lower_idx), self.lower_entries)
        upper = torch.diag(F.softplus(self.raw_diag) + self.eps).index_put(tuple(self.upper_idx), self.upper_entries)
        return lower, upper

    def weight(self) -> Tensor:
        lower, upper = self.factors()
        return lower @ upper

    def logabsdet(self) -> Tensor:
        return torch.log(F.softplus(self.raw_diag) + self.eps).sum()

    def forward(self, inputs, context=None):
        return inputs @ self.weight().T + self.bias, self.logabsdet().expand(inputs.shape[:-1])

    def inverse(self, inputs, context=None):
        lower, upper = self.factors()
        rhs = (inputs - self.bias).T
        z = torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(upper, z, upper=True)
        return x.T, -self.logabsdet().expand(inputs.shape[0])


class BatchNorm(Transform):
    """Batch normalisation as a flow layer; running variance starts at ones (eval is safe before
    training). The inverse uses running statistics and exists in eval mode only."""

    def __init__(self, features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.raw_gamma = nn.Parameter(torch.full((features,), math.log(math.expm1(1 - eps))))
        self.beta = nn.Parameter(torch.zeros(features))
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))

    def _stats(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        flat = inputs.reshape(-1, inputs.shape[-1])
        if self.training and flat.shape[0] > 1:
            mean, var = flat.mean(0), flat.var(0)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var, self.momentum)
            return mean, var
        return self.running_mean, self.running_var

    def forward(self, inputs, context=None):
        mean, var = self._stats(inputs)
        gamma = F.softplus(self.raw_gamma) + self.eps
        out = gamma * (inputs - mean) / torch.sqrt(var + self.eps) + self.beta
        logdet = (torch.log(gamma) - 0.5 * torch.log(var + self.eps)).sum()
        return out, logdet.expand(inputs.shape[:-1])

    def inverse(self, inputs, context=None):
        if self.training:
            raise RuntimeError("BatchNorm's inverse needs running statistics: call .eval() first")
        gamma = F.softplus(self.raw_gamma) + self.eps
        std = torch.sqrt(self.running_var + self.eps)
        out = (inputs - self.beta) * std / gamma + self.running_mean
        logdet = -(torch.log(gamma) - torch.log(std)).sum()
        return out, logdet.expand(inputs.shape[0])


class Standardize(Transform):
    """Fixed elementwise z-scoring (x − mean)/std, its Jacobian included. ``fit`` sets the
    statistics from data (constant columns keep std 1)."""

    def __init__(self, features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))

    @torch.no_grad()
    def fit(self, data: Tensor) -> Standardize:
        finite = data[torch.isfinite(data).all(-1)]
        self.mean.copy_(finite.mean(0))
        std = finite.std(0) if len(finite) > 1 else torch.ones_like(self.std)
        self.std.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))
        return self

    def set(self, mean: Tensor, std: Tensor) -> Standardize:
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype, device=self.mean.device))
            self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype, device=self.std.device))
        return self

    def forward(self, inputs, context=None):
        return (inputs - self.mean) / self.std, -torch.log(self.std).sum().expand(inputs.shape[:-1])

    def inverse(self, inputs, context=None):
        return inputs * self.std + self.mean, torch.log(self.std).sum().expand(inputs.shape[0])


class BoxToCube(Transform):
    """The affine map of the box [low, high] onto [−1, 1]^D (for box-supported flows)."""

    def __init__(self, low: Tensor, high: Tensor):
        super().__init__()
        # own copies: a caller's expanded view or later in-place edit must not alias the buffers
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.get_default_dtype()).clone())
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.get_default_dtype()).clone())

    def _logdet(self, n: int | torch.Size) -> Tensor:
        return torch.log(2 / (self.high - self.low)).sum().expand(n)

    def forward(self, inputs, context=None):
        return 2 * (inputs - self.low) / (self.high - self.low) - 1, self._logdet(inputs.shape[:-1])

    def inverse(self, inputs, context=None):
        return self.low + (inputs + 1) * (self.high - self.low) / 2, -self._logdet(inputs.shape[0])
