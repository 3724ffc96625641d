"""A linear map for tall inputs whose backward picks the faster matrix orientation.

On the CPU, a product whose result has few columns (a (N, 50) @ (50, 5) input gradient, or the
(50, N) @ (N, 5) weight gradient of a layer with 5 inputs) runs 4-5x faster computed transposed,
(Bᵀ Aᵀ)ᵀ, at N = 10,000 (the contrastive loss's B·K pairs; benchmarks/results/contrastive_step.md).
The result is the same product up to float rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["tall_linear"]

_NARROW = 16  # results with fewer columns are computed transposed


def _mm(a: Tensor, b: Tensor) -> Tensor:
    return (b.T @ a.T).T if b.shape[1] < _NARROW else a @ b


class _TallLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(x, weight)
        return _mm(x.reshape(-1, x.shape[-1]), weight.T).view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        g = grad.reshape(-1, weight.shape[0])
        gx = _mm(g, weight).view(x.shape) if ctx.needs_input_grad[0] else None
        gw = _mm(g.T, x.reshape(-1, x.shape[-1])) if ctx.needs_input_grad[1] else None
        return gx, gw


def tall_linear(x: Tensor, weight: Tensor) -> Tensor:
    """x Wᵀ for x (*batch, in) and W (out, in), no bias: ``F.linear(x, W)`` with a faster backward
    when in or out is small.

    Example:
        >>> x, w = torch.randn(6, 3), torch.randn(4, 3)
        >>> torch.allclose(tall_linear(x, w), x @ w.T, atol=1e-6)
        True
    """
    return _TallLinear.apply(x, weight)
