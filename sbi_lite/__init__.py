"""sbi_lite: simulation-based inference with contrastive, likelihood and posterior estimators."""

from sbi_lite.api import infer
from sbi_lite.density import build
from sbi_lite.io import load
from sbi_lite.posterior import DirectPosterior, MCMCPosterior, Posterior
from sbi_lite.priors import AffineBoxUniform, BoxUniform, Prior, TorchPrior, as_prior
from sbi_lite.simulate import Simulations, simulate
from sbi_lite.train import TrainConfig

__all__ = ["infer", "load", "build", "Posterior", "DirectPosterior", "MCMCPosterior", "AffineBoxUniform", "BoxUniform",
           "Prior", "TorchPrior", "as_prior", "Simulations", "simulate", "TrainConfig"]
