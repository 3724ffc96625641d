"""The SRE classifier f(θ, x): a residual MLP on the concatenation [θ, x] (the paper's net)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sbi_lite.density.transforms import Standardize
from sbi_lite.nn import ResidualNet

__all__ = ["RatioEstimator"]


class RatioEstimator(nn.Module):
    """log r(θ, x) = log p(θ|x)/p(θ) + c(x), learned as a classifier logit.

    Linear(d + c → 50), two residual blocks (ReLU → Linear → ReLU → Linear, last layer of each
    initialised U(−1e-3, 1e-3)), Linear(50 → 1); inputs z-scored from the first round's data.

    Example:
        >>> f = RatioEstimator(2, 3)
        >>> f.log_ratio(torch.randn(5, 2), torch.randn(5, 3)).shape
        torch.Size([5])
        >>> f.pairwise(torch.randn(5, 2), torch.randn(5, 3)).shape
        torch.Size([5, 5])
    """

    def __init__(self, theta_dim: int, x_dim: int, hidden: int = 50, num_blocks: int = 2):
        super().__init__()
        self.theta_dim, self.x_dim = theta_dim, x_dim
        self.theta_norm, self.x_norm = Standardize(theta_dim), Standardize(x_dim)
        self.net = ResidualNet(theta_dim + x_dim, 1, 0, hidden, num_blocks)

    def fit_standardization(self, theta: Tensor, x: Tensor) -> None:
        self.theta_norm.fit(theta)
        self.x_norm.fit(x)

    def log_ratio(self, theta: Tensor, x: Tensor) -> Tensor:
        """(B, d), (B, c) -> (B,); or any batch shapes that broadcast, e.g. θ (B, K, d) against
        x (B, 1, c) -> (B, K), where each x's share of the first layer is computed once."""
        t, _ = self.theta_norm(theta)
        z, _ = self.x_norm(x)
        return self.net([t, z])[..., 0]

    def pairwise(self, theta: Tensor, x: Tensor) -> Tensor:
        """(B, d), (B, c) -> (B, B) with entry [i, j] = f(θ_j, x_i), in one batched call."""
        b = len(theta)
        return self.log_ratio(theta.repeat(b, 1), x.repeat_interleave(b, 0)).view(b, b)
