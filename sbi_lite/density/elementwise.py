"""Univariate elementwise maps parameterised by a conditioner: what an autoregressive or
coupling layer plugs in. Each has ``num_params`` per scalar and ``__call__(x, params, inverse)``
returning ``(y, elementwise log|dy/dx|)``. MAF is the affine one; NSF the spline ones.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from sbi_lite.density.splines import bounded_rq_spline, num_params, unbounded_rq_spline

__all__ = ["Affine", "Spline"]

_SOFTPLUS_ONE = math.log(math.e - 1)  # softplus(_SOFTPLUS_ONE) == 1: scale 1 at init


class Affine:
    """u = scale · y + shift with scale = softplus(raw) + 1e-3 (nflows' stable MAF)."""

    num_params = 2

    def __call__(self, x: Tensor, params: Tensor, inverse: bool = False) -> tuple[Tensor, Tensor]:
        shift, raw = params[..., 0], params[..., 1]
        scale = F.softplus(raw + _SOFTPLUS_ONE) + 1e-3
        if inverse:
            return (x - shift) / scale, -scale.log()
        return x * scale + shift, scale.log()


class Spline:
    """Rational-quadratic spline: identity tails beyond ±bound, or (``bounded``) a map of
    [−1, 1] onto itself. ``logit_scale`` divides the width/height logits (set to √hidden)."""

    def __init__(self, bins: int = 8, bound: float = 3.0, bounded: bool = False, logit_scale: float = 1.0):
        self.bins, self.bound, self.bounded, self.logit_scale = bins, bound, bounded, logit_scale
        self.num_params = num_params(bins, bounded)

    def __call__(self, x: Tensor, params: Tensor, inverse: bool = False) -> tuple[Tensor, Tensor]:
        if self.bounded:
            return bounded_rq_spline(x, params, inverse=inverse, logit_scale=self.logit_scale)
        return unbounded_rq_spline(x, params, inverse=inverse, bound=self.bound, logit_scale=self.logit_scale)
