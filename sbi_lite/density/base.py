"""The conditional density estimator contract and the base distributions of flows."""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from sbi_lite.devices import draw_device

__all__ = ["Capabilities", "ConditionalDensityEstimator", "StandardNormal", "UniformCube", "as_context_batch"]


@dataclass(frozen=True)
class Capabilities:
    """What an estimator can do, consulted by the engine instead of special-casing names.

    Attributes:
        log_prob: "exact" (flows), "estimate" (AEM: importance-sampled, biased up slightly), or
            "ode" (diffusion: probability-flow ODE, hundreds of network calls).
        sample_cost: "cheap" (one pass), "sequential" (D passes per layer) or "expensive".
        bounded: the estimator's support can be set to a box (``bounds=`` at build time).
        ema: the weight-averaging decay the engine trains it with by default (``TrainConfig.ema``),
            for losses that are Monte-Carlo estimates (diffusion's score matching), or None.
        broadcast: ``log_prob`` takes inputs (*batch, D) with a context that broadcasts to them,
            e.g. (B, K, D) against (B, 1, C), and computes each context row's share once (the
            contrastive loss then scores its B·K pairs without B·K copies of the context).
    """

    log_prob: Literal["exact", "estimate", "ode"] = "exact"
    sample_cost: Literal["cheap", "sequential", "expensive"] = "cheap"
    bounded: bool = False
    ema: float | None = None
    broadcast: bool = False


class ModuleABC(ABCMeta, type(nn.Module)):
    """Metaclass for abstract torch modules (abstract methods must be implemented)."""


class ConditionalDensityEstimator(nn.Module, metaclass=ModuleABC):
    """q(inputs | context). Shapes: inputs (B, D), context (B, C); samples come first.

    Subclasses implement ``log_prob`` and ``sample``; ``loss`` defaults to −log_prob per sample.
    ``fit_standardization(inputs, context)`` lets data set any fixed pre-processing before training.
    """

    capabilities = Capabilities()
    input_dim: int
    context_dim: int

    @abstractmethod
    def log_prob(self, inputs: Tensor, context: Tensor) -> Tensor:
        """(B, D), (B, C) -> (B,)."""

    @abstractmethod
    def sample(self, n: int, context: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """n samples per context: context (C,) -> (n, D); (B, C) -> (n, B, D)."""

    def loss(self, inputs: Tensor, context: Tensor) -> Tensor:
        """Per-sample training loss (B,); the caller reduces."""
        return -self.log_prob(inputs, context)

    def fit_standardization(self, inputs: Tensor, context: Tensor) -> None:
        """Fit the fixed pre-processing to training data: ``input_map`` and ``context_map``, where
        they are fitted maps (``Standardize``; a box map or a missing one is left alone)."""
        for name, data in (("input_map", inputs), ("context_map", context)):
            fit = getattr(getattr(self, name, None), "fit", None)
            if fit is not None:
                fit(data)


def as_context_batch(context: Tensor, context_dim: int) -> tuple[Tensor, bool]:
    """(C,) or (B, C) -> ((B, C), was_single); clear error on a wrong width."""
    single = context.dim() == 1
    batch = context[None] if single else context
    if batch.dim() != 2 or batch.shape[-1] != context_dim:
        raise ValueError(f"context must have shape ({context_dim},) or (B, {context_dim}); got {tuple(context.shape)}")
    return batch, single


class StandardNormal(nn.Module):
    """N(0, I_D)."""

    def __init__(self, features: int):
        super().__init__()
        self.features = features
        self.register_buffer("_zero", torch.zeros(()))

    def log_prob(self, u: Tensor) -> Tensor:
        return -0.5 * (u.pow(2).sum(-1) + self.features * math.log(2 * math.pi))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        device = draw_device(generator, self._zero.device)
        return torch.randn(n, self.features, generator=generator, dtype=self._zero.dtype, device=device).to(self._zero.device)


class UniformCube(nn.Module):
    """Uniform on [−1, 1]^D: the base of box-supported flows."""

    def __init__(self, features: int):
        super().__init__()
        self.features = features
        self.register_buffer("_zero", torch.zeros(()))

    def log_prob(self, u: Tensor) -> Tensor:
        inside = (u.abs() <= 1 + 1e-6).all(-1)
        return torch.where(inside, -self.features * math.log(2.0), -math.inf)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        device = draw_device(generator, self._zero.device)
        u = torch.rand(n, self.features, generator=generator, dtype=self._zero.dtype, device=device)
        return (2 * u - 1).to(self._zero.device)
