"""MADE with sequential degrees, residual blocks and unmasked context (Germain et al. 2015;
the ResMADE of Durkan & Nash 2019).

Output layout is dimension-major: output ``(d − 1)·P + p`` holds parameter p of dimension d and
depends only on ``y_<d`` and the context, so ``made(y, c).view(B, D, P)`` is the parameter block.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sbi_lite.nn.fast import fast_activation, tall_linear

__all__ = ["MaskedLinear", "MADE"]


class MaskedLinear(nn.Linear):
    """``(W ⊙ M) h + b`` with a fixed binary mask M of shape (out, in)."""

    def __init__(self, mask: Tensor):
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, h: Tensor) -> Tensor:
        return nn.functional.linear(h, self.weight * self.mask, self.bias)


def hidden_degrees(features: int, hidden: int) -> Tensor:
    """Sequential degrees ((k − 1) mod (D − 1)) + 1; all 0 when D = 1 (context only)."""
    if features == 1:
        return torch.zeros(hidden, dtype=torch.long)
    return torch.arange(hidden) % (features - 1) + 1


class MADE(nn.Module):
    """Autoregressive network y (B, D), context (B, C) -> parameters (B, D, P).

    Any batch shape broadcasts: y (B, K, D) with context (B, 1, C) computes the context's share
    of every layer once per context row.

    Args:
        features: D.
        context_features: C (context enters every hidden layer unmasked).
        params_per_dim: P.
        hidden: hidden width H (≥ D recommended so no input is dropped).
        num_blocks: hidden blocks after the first masked layer.
        residual: pre-activation residual blocks (ResMADE) or plain layers (the original MADE).
        activation: elementwise nonlinearity module.
        dropout: between the two layers of a residual block.

    Example:
        >>> made = MADE(3, 2, params_per_dim=2, hidden=16)
        >>> made(torch.randn(5, 3), torch.randn(5, 2)).shape
        torch.Size([5, 3, 2])
    """

    def __init__(self, features: int, context_features: int, params_per_dim: int, hidden: int = 64,
                 num_blocks: int = 2, residual: bool = True, activation: nn.Module | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.features, self.params_per_dim, self.residual = features, params_per_dim, residual
        self.activation = activation if activation is not None else nn.ReLU()
        deg_in = torch.arange(1, features + 1)
        deg_h = hidden_degrees(features, hidden)
        hidden_mask = (deg_h[:, None] >= deg_h[None, :]).float()
        self.first = MaskedLinear((deg_h[:, None] >= deg_in[None, :]).float())
        self.context_first = nn.Linear(context_features, hidden)
        self.layers = nn.ModuleList()
        self.context_layers = nn.ModuleList()
        for _ in range(num_blocks):
            block = nn.ModuleList([MaskedLinear(hidden_mask)])
            if residual:
                block.append(MaskedLinear(hidden_mask))
                nn.init.uniform_(block[1].weight, -1e-3, 1e-3)
                nn.init.uniform_(block[1].bias, -1e-3, 1e-3)
            self.layers.append(block)
            self.context_layers.append(nn.Linear(context_features, hidden))
        self.dropout = nn.Dropout(dropout)
        deg_out = deg_in.repeat_interleave(params_per_dim)
        self.last = MaskedLinear((deg_out[:, None] > deg_h[None, :]).float())
        # With sequential degrees ≥ 1 no hidden unit reaches the first output; this unmasked
        # context path (context has degree 0) lets q(y_1 | c) depend on c.
        self.context_last = nn.Linear(context_features, features * params_per_dim)

    def forward(self, y: Tensor, context: Tensor) -> Tensor:
        if context.shape[:-1] != y.shape[:-1]:
            return self._broadcast(y, context)
        act = self.activation
        h = self.first(y) + self.context_first(context)
        if not self.residual:
            h = act(h)
        for block, ctx in zip(self.layers, self.context_layers):
            if self.residual:
                t = block[0](act(h)) + ctx(context)
                h = h + block[1](self.dropout(act(t)))
            else:
                h = act(block[0](h) + ctx(context))
        out = self.last(act(h) if self.residual else h) + self.context_last(context)
        return out.view(*out.shape[:-1], self.features, self.params_per_dim)

    def _broadcast(self, y: Tensor, context: Tensor) -> Tensor:
        """``forward`` when the context broadcasts against y (e.g. (B, 1, C) against (B, K, D)):
        the same sums, but every layer's context term and bias are added on the context's rows
        and broadcast once, the masked products skip their bias, and tanh is ``fast_tanh``."""
        act = fast_activation(self.activation)

        def masked(layer: MaskedLinear, h: Tensor) -> Tensor:
            return tall_linear(h, layer.weight * layer.mask)

        def shared(layer: MaskedLinear, ctx: nn.Linear) -> Tensor:
            return ctx(context) + layer.bias

        h = masked(self.first, y) + shared(self.first, self.context_first)
        if not self.residual:
            h = act(h)
        for block, ctx in zip(self.layers, self.context_layers):
            if self.residual:
                t = masked(block[0], act(h)) + shared(block[0], ctx)
                h = h + (masked(block[1], self.dropout(act(t))) + block[1].bias)
            else:
                h = act(masked(block[0], h) + shared(block[0], ctx))
        out = masked(self.last, act(h) if self.residual else h) + shared(self.last, self.context_last)
        return out.view(*out.shape[:-1], self.features, self.params_per_dim)
