"""The SRE classifier f(θ, x): a residual MLP on the concatenation [θ, x] (the paper's net), or a
separable critic f(θ, x) = a(θ)ᵀb(x) that scores all B×B pairs of a minibatch from 2B passes."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sbi_lite.density.transforms import Standardize
from sbi_lite.nn import ResidualNet

__all__ = ["RatioEstimator", "CRITICS"]

CRITICS = ("joint", "separable")


class RatioEstimator(nn.Module):
    """log r(θ, x) = log p(θ|x)/p(θ) + c(x), learned as a classifier logit.

    ``critic="joint"`` (the paper's): Linear(d + c → hidden), ``num_blocks`` residual blocks
    (ReLU → Linear → ReLU → Linear, last layer of each initialised U(−1e-3, 1e-3)), Linear(hidden
    → 1). ``critic="separable"``: two such nets, a: θ → R^F and b: x → R^F, and f = a(θ)ᵀb(x); the
    contrastive loss then costs 2B network rows a step instead of B·K (``pairwise``), at the price
    of a rank-F score. Inputs are z-scored from the first round's data.

    Args:
        theta_dim, x_dim: d and c.
        hidden, num_blocks: width and depth of each net.
        critic: "joint" or "separable".
        features: F, the separable critic's embedding width (None: 64).

    Example:
        >>> f = RatioEstimator(2, 3)
        >>> f.log_ratio(torch.randn(5, 2), torch.randn(5, 3)).shape
        torch.Size([5])
        >>> f.pairwise(torch.randn(5, 2), torch.randn(5, 3)).shape
        torch.Size([5, 5])
    """

    def __init__(self, theta_dim: int, x_dim: int, hidden: int = 50, num_blocks: int = 2, critic: str = "joint",
                 features: int | None = None):
        super().__init__()
        if critic not in CRITICS:
            raise ValueError(f"critic must be one of {CRITICS}, got {critic!r}")
        if features is not None and critic != "separable":
            raise ValueError(f"features={features!r} applies to critic='separable' only; critic={critic!r}")
        features = 64 if features is None else features
        if isinstance(features, bool) or not isinstance(features, int) or features < 1:
            raise ValueError(f"features must be a positive int, got {features!r}")
        self.theta_dim, self.x_dim, self.critic = theta_dim, x_dim, critic
        self.theta_norm, self.x_norm = Standardize(theta_dim), Standardize(x_dim)
        if critic == "joint":
            self.net = ResidualNet(theta_dim + x_dim, 1, 0, hidden, num_blocks)
        else:
            self.theta_net = ResidualNet(theta_dim, features, 0, hidden, num_blocks)
            self.x_net = ResidualNet(x_dim, features, 0, hidden, num_blocks)

    def fit_standardization(self, theta: Tensor, x: Tensor) -> None:
        self.theta_norm.fit(theta)
        self.x_norm.fit(x)

    def _standardized(self, theta: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.theta_norm(theta)[0], self.x_norm(x)[0]

    def log_ratio(self, theta: Tensor, x: Tensor) -> Tensor:
        """(B, d), (B, c) -> (B,); or any batch shapes that broadcast, e.g. θ (B, K, d) against
        x (B, 1, c) -> (B, K), where each x's share of the first layer is computed once."""
        t, z = self._standardized(theta, x)
        if self.critic == "separable":
            return (self.theta_net(t) * self.x_net(z)).sum(-1)
        return self.net([t, z])[..., 0]

    def pairwise(self, theta: Tensor, x: Tensor) -> Tensor:
        """(B, d), (B, c) -> (B, B) with entry [i, j] = f(θ_j, x_i), in one batched call (the
        separable critic: B rows through each net and one matrix product)."""
        if self.critic == "separable":
            t, z = self._standardized(theta, x)
            return self.x_net(z) @ self.theta_net(t).T
        b = len(theta)
        return self.log_ratio(theta.repeat(b, 1), x.repeat_interleave(b, 0)).view(b, b)
