"""Score-based diffusion density estimation with likelihood weighting."""

from sbi_lite.density.score.estimator import ScoreEstimator
from sbi_lite.density.score.ode import RK45Stats, solve_rk45
from sbi_lite.density.score.sde import SDE, SubVPSDE, VESDE, VPSDE

__all__ = ["ScoreEstimator", "SDE", "SubVPSDE", "VESDE", "VPSDE", "RK45Stats", "solve_rk45"]
