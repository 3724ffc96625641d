"""Builders of the flows: MAF, NSF (coupling) and NSF (autoregressive)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sbi_lite.density.base import Capabilities, StandardNormal, UniformCube
from sbi_lite.density.elementwise import Affine, Spline
from sbi_lite.density.flow import ConditionalFlow
from sbi_lite.density.layers import Autoregressive, Coupling
from sbi_lite.density.transforms import BatchNorm, CompositeTransform, LULinear, Permutation

__all__ = ["build_maf", "build_nsf"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}


def _activation(name: str) -> nn.Module:
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}") from None


def build_maf(input_dim: int, context_dim: int, *, num_transforms: int = 5, hidden: int = 50,
              num_blocks: int = 1, residual: bool = False, activation: str = "tanh",
              batch_norm: bool = False, dropout: float = 0.0, seed: int = 0,
              bounds: tuple[Tensor, Tensor] | None = None) -> ConditionalFlow:
    """Masked Autoregressive Flow (Papamakarios et al. 2017) as used in the paper.

    Defaults (the paper's SBI setting): 5 MADEs with two hidden layers of 50 tanh units (the
    first masked layer plus ``num_blocks=1`` plain layer), a reversal of the variable order
    between layers, standard-normal base, scale = softplus(raw) + 1e-3. ``seed`` is unused (no
    random permutations) but accepted so every builder takes it.
    """
    if bounds is not None:
        raise ValueError("MAF's affine layers cannot keep a box support; use estimator 'nsf' with bounds")
    layers: list[nn.Module] = []
    for i in range(num_transforms):
        layers.append(Autoregressive(Affine(), input_dim, context_dim, hidden, num_blocks, residual,
                                     _activation(activation), dropout))
        if i < num_transforms - 1:
            if batch_norm:
                layers.append(BatchNorm(input_dim))
            layers.append(Permutation(input_dim))
    return ConditionalFlow(CompositeTransform(layers), StandardNormal(input_dim), input_dim, context_dim,
                           capabilities=Capabilities("exact", "sequential", bounded=False, broadcast=True))


def build_nsf(input_dim: int, context_dim: int, *, num_transforms: int = 5, hidden: int = 64,
              num_blocks: int = 2, bins: int = 8, tail_bound: float = 3.0, autoregressive: bool = False,
              activation: str = "relu", dropout: float = 0.0, seed: int = 0,
              bounds: tuple[Tensor, Tensor] | None = None) -> ConditionalFlow:
    """Rational-quadratic Neural Spline Flow (Durkan et al. 2019), coupling or autoregressive.

    Defaults, sized for SBI (thesis §2.12): 5 steps of [random permutation → LU-linear →
    spline layer] plus a final LU-linear; K = 8 bins; B = 3 on z-scored inputs; hidden 64 with 2
    residual blocks. Coupling is the default because it samples in one pass.

    With ``bounds=(low, high)`` the flow's support is exactly that box: inputs are mapped onto
    [−1, 1]^D, every layer is a bounded spline of [−1, 1] onto itself (permutations only, no
    LU mixing, which would leave the cube) and the base is uniform on the cube. This is the
    leakage-free posterior estimator for box priors.

    ``seed`` fixes the random permutations.
    """
    gen = torch.Generator().manual_seed(seed)
    bounded = bounds is not None
    spline = Spline(bins, tail_bound, bounded=bounded, logit_scale=math.sqrt(hidden))
    act = _activation(activation)
    layers: list[nn.Module] = []
    for i in range(num_transforms):
        if input_dim > 1:
            layers.append(Permutation.random(input_dim, gen))
        if not bounded:
            layers.append(LULinear(input_dim))
        if autoregressive:
            layers.append(Autoregressive(spline, input_dim, context_dim, hidden, num_blocks, True, act, dropout))
        else:
            mask = torch.arange(input_dim) % 2 == i % 2
            if input_dim == 1:
                mask = torch.ones(1, dtype=torch.bool)
            layers.append(Coupling(spline, mask, context_dim, hidden, num_blocks, act, dropout))
    if not bounded:
        layers.append(LULinear(input_dim))
    base = UniformCube(input_dim) if bounded else StandardNormal(input_dim)
    caps = Capabilities("exact", "sequential" if autoregressive else "cheap", bounded=True, broadcast=True)
    return ConditionalFlow(CompositeTransform(layers), base, input_dim, context_dim, bounds, caps)
