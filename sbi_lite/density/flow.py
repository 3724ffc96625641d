"""ConditionalFlow: a transform, a base distribution and fixed pre-processing of both sides.

log q(y|c) = log π(T(P(y); c')) + log|det ∂T/∂ỹ| + log|det ∂P/∂y|, where P standardises y (or
maps a box onto [−1, 1]^D) and c' is the standardised context.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sbi_lite.density.base import Capabilities, ConditionalDensityEstimator, as_context_batch
from sbi_lite.density.transforms import BoxToCube, Standardize, Transform

__all__ = ["ConditionalFlow"]


class ConditionalFlow(ConditionalDensityEstimator):
    """A normalising flow q(y|c) with exact log-density and exact sampling.

    Args:
        transform: the learnable transform (density direction y → u).
        base: base distribution with ``log_prob`` and ``sample(n, generator)``.
        input_dim, context_dim: D and C.
        bounds: optional (low, high) box: the flow's support is then exactly that box (the
            transform must map [−1, 1]^D onto itself and the base must live there).
        capabilities: what this flow offers.
    """

    def __init__(self, transform: Transform, base: nn.Module, input_dim: int, context_dim: int,
                 bounds: tuple[Tensor, Tensor] | None = None, capabilities: Capabilities = Capabilities()):
        super().__init__()
        self.transform, self.base = transform, base
        self.input_dim, self.context_dim = input_dim, context_dim
        self.input_map = BoxToCube(*bounds) if bounds is not None else Standardize(input_dim)
        self.context_map = Standardize(context_dim)
        self.capabilities = capabilities

    def _check(self, inputs: Tensor, context: Tensor) -> None:
        if inputs.dim() < 1 or inputs.shape[-1] != self.input_dim:
            raise ValueError(f"inputs must have shape (B, {self.input_dim}); got {tuple(inputs.shape)}")
        batch = inputs.shape[:-1]
        if (context.dim() != inputs.dim() or context.shape[-1] != self.context_dim
                or any(c not in (1, b) for c, b in zip(context.shape[:-1], batch))):
            raise ValueError(f"context must have shape ({', '.join(map(str, batch))}, {self.context_dim}) or one that "
                             f"broadcasts to it; got {tuple(context.shape)}")

    def log_prob(self, inputs: Tensor, context: Tensor) -> Tensor:
        """log q(inputs | context): (B, D), (B, C) -> (B,); or (*batch, D) with a context that
        broadcasts to (*batch, C) -> (*batch,), e.g. θ (B, K, D) against x (B, 1, C), where each
        context's share of the network is computed once (the contrastive loss's fast path)."""
        self._check(inputs, context)
        if isinstance(self.input_map, BoxToCube):  # outside the box the density is zero
            inside = ((inputs >= self.input_map.low) & (inputs <= self.input_map.high)).all(-1)
            inputs = torch.where(inside[..., None], inputs, (self.input_map.low + self.input_map.high) / 2)
        z, ld_pre = self.input_map(inputs)
        c, _ = self.context_map(context)
        u, ld = self.transform(z, c)
        out = self.base.log_prob(u) + ld + ld_pre
        if isinstance(self.input_map, BoxToCube):
            out = torch.where(inside, out, -torch.inf)
        return out

    def sample(self, n: int, context: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        batch, single = as_context_batch(context, self.context_dim)
        c, _ = self.context_map(batch.repeat(n, 1))  # row s·B + b holds context b
        u = self.base.sample(n * len(batch), generator)
        z, _ = self.transform.inverse(u, c)
        y, _ = self.input_map.inverse(z)
        y = y.view(n, len(batch), self.input_dim)
        return y[:, 0] if single else y
