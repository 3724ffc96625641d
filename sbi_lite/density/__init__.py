"""The density-estimation zoo, behind one conditional contract."""

from sbi_lite.density.base import Capabilities, ConditionalDensityEstimator
from sbi_lite.density.flow import ConditionalFlow
from sbi_lite.density.registry import REGISTRY, build, register

__all__ = ["Capabilities", "ConditionalDensityEstimator", "ConditionalFlow", "REGISTRY", "build", "register"]
