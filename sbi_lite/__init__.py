"""sbi_lite: simulation-based inference with contrastive, likelihood and posterior estimators."""

from sbi_lite.priors import AffineBoxUniform, BoxUniform, Prior, TorchPrior, as_prior
from sbi_lite.simulate import Simulations, simulate

__all__ = ["AffineBoxUniform", "BoxUniform", "Prior", "TorchPrior", "as_prior", "Simulations", "simulate"]
