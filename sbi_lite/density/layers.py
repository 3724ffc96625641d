"""The two conditional flow layers, each taking any elementwise map (affine or spline).

- ``Autoregressive``: parameters of scalar i come from a MADE on y_<i and the context; the
  density pass is one network call, sampling is D calls (the MAF direction).
- ``Coupling``: half the features condition an elementwise map of the other half through a
  residual net; the conditioning half gets its own elementwise map with free parameters (as in
  the NSF thesis), so every coordinate is transformed. One call in both directions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sbi_lite.density.transforms import Transform
from sbi_lite.nn import MADE, ResidualNet

__all__ = ["Autoregressive", "Coupling"]

# Up to about this many rows a spline's cost is its count of tensor operations, so the coupling's
# two halves share one call; beyond it, the free half's knots computed once on its own rows win
# (one coupling layer forward and backward on one CPU thread, benchmarks/results/nsf_step.md: the
# two paths are level near 1,000 rows; a GPU's crossover was not measured).
_ONE_CALL_ROWS = 1024


class Autoregressive(Transform):
    """y (B, D) ↦ u_i = g(y_i; MADE(y_<i, c)_i).

    Example:
        >>> from sbi_lite.density.elementwise import Affine
        >>> layer = Autoregressive(Affine(), features=3, context_features=2, hidden=16)
        >>> u, logdet = layer(torch.randn(4, 3), torch.randn(4, 2))
        >>> u.shape, logdet.shape
        (torch.Size([4, 3]), torch.Size([4]))
    """

    def __init__(self, elementwise, features: int, context_features: int, hidden: int = 64,
                 num_blocks: int = 2, residual: bool = True, activation: nn.Module | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.elementwise = elementwise
        self.made = MADE(features, context_features, elementwise.num_params, hidden, num_blocks,
                         residual, activation, dropout)

    def forward(self, inputs, context=None):
        out, logdet = self.elementwise(inputs, self.made(inputs, context))
        return out, logdet.sum(-1)

    def inverse(self, inputs, context=None):
        y = torch.zeros_like(inputs)
        for i in range(inputs.shape[-1]):
            params = self.made(y, context)[:, i]
            yi, _ = self.elementwise(inputs[:, i], params, inverse=True)
            y = torch.cat([y[:, :i], yi[:, None], y[:, i + 1:]], -1)
        # one more pass gives the log-det of the whole inverse, consistent with the density pass
        _, logdet = self.elementwise(inputs, self.made(y, context), inverse=True)
        return y, logdet.sum(-1)


class Coupling(Transform):
    """Coupling layer over a binary mask (True = transformed by the conditioner's parameters).

    Example:
        >>> from sbi_lite.density.elementwise import Spline
        >>> layer = Coupling(Spline(bins=4), torch.tensor([True, False]), context_features=1, hidden=8)
        >>> layer(torch.randn(3, 2), torch.randn(3, 1))[0].shape
        torch.Size([3, 2])
    """

    def __init__(self, elementwise, mask: Tensor, context_features: int, hidden: int = 64,
                 num_blocks: int = 2, activation: nn.Module | None = None, dropout: float = 0.0):
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.bool)
        self.register_buffer("transformed", torch.nonzero(mask)[:, 0])
        self.register_buffer("identity", torch.nonzero(~mask)[:, 0])
        order = torch.cat([self.transformed, self.identity])
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("unorder", torch.argsort(order), persistent=False)
        self.elementwise = elementwise
        p = elementwise.num_params
        self.net = ResidualNet(len(self.identity), len(self.transformed) * p, context_features, hidden,
                               num_blocks, activation, dropout, zero_init_output=True)
        self.free = nn.Parameter(torch.zeros(len(self.identity), p))

    def _params(self, y_id: Tensor, context: Tensor) -> Tensor:
        return self.net(y_id, context).view(*y_id.shape[:-1], len(self.transformed), -1)

    def forward(self, inputs, context=None):
        params = self._params(inputs[..., self.identity], context)
        rows = params.shape[:-2]
        if rows.numel() <= _ONE_CALL_ROWS:  # both halves in one spline call: fewer operations
            free = self.free.expand(*rows, *self.free.shape)
            out, logdet = self.elementwise(inputs[..., self.order], torch.cat([params, free], -2))
            return out[..., self.unorder], logdet.sum(-1)
        out_tr, ld_tr = self.elementwise(inputs[..., self.transformed], params)
        y_id, ld_id = self.elementwise(inputs[..., self.identity], self.free)  # knots once, on the free rows
        return self._join(out_tr, y_id, ld_tr, ld_id)

    def inverse(self, inputs, context=None):
        # the identity half is restored first (its parameters are free), then it conditions the other
        y_id, ld_id = self.elementwise(inputs[..., self.identity], self.free, inverse=True)
        out_tr, ld_tr = self.elementwise(inputs[..., self.transformed], self._params(y_id, context), inverse=True)
        return self._join(out_tr, y_id, ld_tr, ld_id)

    def _join(self, out_tr: Tensor, y_id: Tensor, ld_tr: Tensor, ld_id: Tensor) -> tuple[Tensor, Tensor]:
        """Both halves back in the features' order, and the layer's log-determinant."""
        return torch.cat([out_tr, y_id], -1)[..., self.unorder], ld_tr.sum(-1) + ld_id.sum(-1)
