"""Pure building blocks: masked autoregressive networks and residual MLPs."""

from sbi_lite.nn.made import MADE, MaskedLinear
from sbi_lite.nn.resnet import ResidualNet

__all__ = ["MADE", "MaskedLinear", "ResidualNet"]
