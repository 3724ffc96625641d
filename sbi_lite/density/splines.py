"""Monotone rational-quadratic splines (Gregory & Delbourgo 1982; Durkan et al. 2019) as pure
functions of tensors. Modules only produce the unconstrained parameters.

Two variants share one core:
- ``unbounded_rq_spline``: a spline on [−B, B] with identity tails outside (boundary
  derivatives fixed to 1, so the map is C¹ everywhere). Parameters per scalar: 3K − 1.
- ``bounded_rq_spline``: a spline mapping [a, b] onto itself, no tails, boundary derivatives
  learned. Parameters per scalar: 3K + 1. Building a flow from these (and a uniform base) gives a
  density whose support is exactly a box.

Every function returns ``(outputs, log|d outputs / d inputs|)`` elementwise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MIN_BIN_WIDTH", "MIN_BIN_HEIGHT", "MIN_DERIVATIVE", "rational_quadratic_spline",
           "unbounded_rq_spline", "bounded_rq_spline", "num_params"]

# one minimum for widths and heights: both sets of bins are built in one pass
MIN_BIN_WIDTH = MIN_BIN_HEIGHT = MIN_DERIVATIVE = 1e-3
# softplus(_UNIT) + MIN_DERIVATIVE == 1: the identity-matching boundary derivative.
_UNIT = math.log(math.expm1(1 - MIN_DERIVATIVE))


def num_params(bins: int, bounded: bool) -> int:
    """Unconstrained parameters per scalar: 3K − 1 with identity tails, 3K + 1 when bounded."""
    return 3 * bins + 1 if bounded else 3 * bins - 1


def _bins(logits: Tensor, low: float, high: float, min_size: float) -> tuple[Tensor, Tensor, Tensor]:
    """Bins of [low, high] from (..., K) logits: lower ends (..., K), sizes (..., K) and the K − 1
    interior knots, with both outer knots exact."""
    bins = logits.shape[-1]
    # an explicit softmax: torch's kernel is ~2x slower on such short, strided last axes
    e = torch.exp(logits - logits.detach().amax(-1, keepdim=True))
    sizes = min_size + (1 - min_size * bins) * e / e.sum(-1, keepdim=True)
    interior = torch.cumsum(sizes[..., :-1], -1).mul(high - low).add(low)
    lower = F.pad(interior, (1, 0), value=low)
    return lower, F.pad(interior, (0, 1), value=high) - lower, interior


def rational_quadratic_spline(
    inputs: Tensor, width_logits: Tensor, height_logits: Tensor, derivative_logits: Tensor,
    *, inverse: bool = False, left: float = -1.0, right: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """The spline on [left, right] → [left, right]; inputs must already lie in the interval.

    Args:
        inputs: (...,) values.
        width_logits, height_logits: (..., K), both of one shape, whose batch part is the inputs'
            or broadcasts to it (parameters shared by many inputs, e.g. (D, K) against (B, D): the
            knots are then computed once, on the parameters' own rows).
        derivative_logits: (..., K + 1), mapped by softplus + MIN_DERIVATIVE.
        inverse: evaluate the inverse map (quadratic formula, stable root).

    Returns:
        outputs (...,) and log|derivative| (...,) of the map actually evaluated.
    """
    return _spline(inputs, torch.stack([width_logits, height_logits], -2), derivative_logits,
                   inverse=inverse, left=left, right=right)


def _spline(inputs: Tensor, logits: Tensor, derivative_logits: Tensor, *, inverse: bool, left: float,
            right: float) -> tuple[Tensor, Tensor]:
    """``rational_quadratic_spline`` with the width and height logits stacked, (..., 2, K): both
    sets of bins come from one pass and the six per-bin values from three gathers, since a small
    batch's cost is its count of tensor operations, not their size."""
    if MIN_BIN_WIDTH * logits.shape[-1] >= 1:
        raise ValueError(f"too many bins ({logits.shape[-1]}) for the minimum bin width {MIN_BIN_WIDTH}")
    lower, size, interior = _bins(logits, left, right, MIN_BIN_WIDTH)
    deriv = MIN_DERIVATIVE + F.softplus(derivative_logits)
    idx = (inputs[..., None] >= interior[..., 1 if inverse else 0, :]).sum(-1, keepdim=True)  # each input's bin
    batch = idx.shape[:-1]  # shared parameters broadcast here: gathered from, never copied
    ends = idx[..., None, :].expand(*batch, 2, 1)
    (x0, y0), (w, h) = (t.expand(*batch, 2, t.shape[-1]).gather(-1, ends)[..., 0].unbind(-1) for t in (lower, size))
    d0, d1 = deriv.expand(*batch, deriv.shape[-1]).gather(-1, torch.cat([idx, idx + 1], -1)).unbind(-1)
    s = h / w
    delta = d0 + d1 - 2 * s
    if inverse:
        r = inputs - y0
        a = h * (s - d0) + r * delta
        b = h * d0 - r * delta
        c = -s * r
        disc = (b.pow(2) - 4 * a * c).clamp_min(0)
        xi = (2 * c / (-b - disc.sqrt())).clamp(0, 1)
    else:
        xi = ((inputs - x0) / w).clamp(0, 1)
    one_minus = xi * (1 - xi)
    denom = s + delta * one_minus
    log_deriv = 2 * torch.log(s) + torch.log(d1 * xi.pow(2) + 2 * s * one_minus + d0 * (1 - xi).pow(2)) - 2 * torch.log(denom)
    if inverse:
        return x0 + xi * w, -log_deriv
    return y0 + h * (s * xi.pow(2) + d0 * one_minus) / denom, log_deriv


def unbounded_rq_spline(inputs: Tensor, params: Tensor, *, inverse: bool = False, bound: float = 3.0,
                        logit_scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """Spline on [−bound, bound], identity outside. ``params`` (..., 3K − 1) = [widths, heights,
    interior derivatives]; width/height logits are divided by ``logit_scale`` (√hidden keeps the
    initial bins near uniform)."""
    bins = (params.shape[-1] + 1) // 3
    wh, d = params.split([2 * bins, bins - 1], -1)  # one gradient copy (a cat), not padded ones
    wh, d = wh.unflatten(-1, (2, bins)) / logit_scale, F.pad(d, (1, 1), value=_UNIT)
    inside = (inputs >= -bound) & (inputs <= bound)
    clamped = inputs.clamp(-bound, bound)  # spline on a safe copy: no NaN gradients from the tails
    out, logdet = _spline(clamped, wh, d, inverse=inverse, left=-bound, right=bound)
    return torch.where(inside, out, inputs), torch.where(inside, logdet, 0.0)


def bounded_rq_spline(inputs: Tensor, params: Tensor, *, inverse: bool = False, left: float = -1.0,
                      right: float = 1.0, logit_scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """Spline mapping [left, right] onto itself. ``params`` (..., 3K + 1) = [widths, heights, all
    K + 1 derivatives]; zero parameters give the identity."""
    bins = (params.shape[-1] - 1) // 3
    wh, d = params.split([2 * bins, bins + 1], -1)
    return _spline(inputs.clamp(left, right), wh.unflatten(-1, (2, bins)) / logit_scale, d + _UNIT,
                   inverse=inverse, left=left, right=right)
