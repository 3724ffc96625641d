"""Fully connected residual networks (pre-activation blocks, optional context gating)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from sbi_lite.nn.fast import tall_linear

__all__ = ["ResidualNet"]


class ResidualNet(nn.Module):
    """h = Linear(in + C → H)([y, c]); N blocks h += gate(c) ⊙ Lin2(drop(act(Lin1(act(h))))); out.

    The gate ``sigmoid(Linear(C → H)(c))`` is the conditioning scheme of the NSF thesis (§1.4);
    each block's last layer starts near zero so the net starts near its skip path.

    The input is ``y`` (or a list of parts concatenated along the last axis) and the context.
    Their batch shapes may differ and broadcast, e.g. (B, K, ·) against (B, 1, ·): the first
    layer is then split by columns so that each part's share is computed on its own rows, once
    (and the gates on the context rows), instead of on the broadcast rows.

    Args:
        in_features, out_features: input and output widths.
        context_features: C; 0 for no context (no gate).
        hidden: H. num_blocks: N. activation, dropout: as usual.

    Example:
        >>> net = ResidualNet(4, 1, context_features=0, hidden=50)
        >>> net(torch.randn(7, 4)).shape
        torch.Size([7, 1])
    """

    def __init__(self, in_features: int, out_features: int, context_features: int = 0, hidden: int = 64,
                 num_blocks: int = 2, activation: nn.Module | None = None, dropout: float = 0.0,
                 zero_init_output: bool = False):
        super().__init__()
        self.activation = activation if activation is not None else nn.ReLU()
        self.context_features = context_features
        self.first = nn.Linear(in_features + context_features, hidden)
        self.blocks = nn.ModuleList()
        self.gates = nn.ModuleList()
        for _ in range(num_blocks):
            lin1, lin2 = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
            nn.init.uniform_(lin2.weight, -1e-3, 1e-3)
            nn.init.uniform_(lin2.bias, -1e-3, 1e-3)
            self.blocks.append(nn.ModuleList([lin1, lin2]))
            if context_features:
                self.gates.append(nn.Linear(context_features, hidden))
        self.dropout = nn.Dropout(dropout)
        self.last = nn.Linear(hidden, out_features)
        if zero_init_output:
            nn.init.uniform_(self.last.weight, -1e-3, 1e-3)
            nn.init.zeros_(self.last.bias)

    def _first(self, parts: list[Tensor]) -> Tensor:
        if all(p.shape[:-1] == parts[0].shape[:-1] for p in parts):
            return self.first(parts[0] if len(parts) == 1 else torch.cat(parts, -1))
        h, start = None, 0
        for p in parts:  # Σ_p W[:, cols_p] p + b, each term on its own (unbroadcast) rows
            term = tall_linear(p, self.first.weight[:, start:start + p.shape[-1]])
            h, start = term if h is None else h + term, start + p.shape[-1]
        return h + self.first.bias

    def forward(self, y: Tensor | Sequence[Tensor], context: Tensor | None = None) -> Tensor:
        act = self.activation
        parts = [y] if isinstance(y, Tensor) else list(y)
        if context is not None and self.context_features:
            parts.append(context)
        h = self._first(parts)
        for i, (lin1, lin2) in enumerate(self.blocks):
            t = lin2(self.dropout(act(lin1(act(h)))))
            if self.context_features:
                t = t * torch.sigmoid(self.gates[i](context))
            h = h + t
        return self.last(h)
