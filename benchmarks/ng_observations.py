"""More observations of the Nonlinear Gaussian, each with a reference posterior from the exact
likelihood: accuracy measured at one x0 proves little, so methods are compared on all of them.

Observation 0 is the paper's x0 (θ*). Observations 1..5 are x simulated at θ drawn from the
prior, θ from ``default_rng(1000 + k)`` and the simulator's noise from ``default_rng(2000 + k)``.
Each reference is drawn by ``ng_reference.reference_samples`` (slice sampling on the exact
log-likelihood, then random sign flips of θ3 and θ4, under which the likelihood is invariant)
and checked by self-normalised importance sampling with an independent proposal (a defensive
mixture: 90% a Gaussian fitted to the folded draws with 4× their covariance, 10% the prior);
the folded moments must agree within 5 Monte-Carlo standard errors (``check``).

Run: ``.venv/bin/python benchmarks/ng_observations.py`` (~3 min) writes
benchmarks/reference/ng_observations.npz: theta (6, 5), x0 (6, 8), reference (6, 10000, 5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulators import nonlinear_gaussian as ng

OUT = Path(__file__).parent / "reference" / "ng_observations.npz"
N_EXTRA, N_REFERENCE = 5, 10_000


def observations() -> tuple[np.ndarray, np.ndarray]:
    """θ (6, 5) and x0 (6, 8): the paper's, then five drawn from the prior with fixed seeds."""
    thetas, xs = [ng.THETA_TRUE], [ng.X0]
    for k in range(1, N_EXTRA + 1):
        theta = np.random.default_rng(1000 + k).uniform(-3, 3, (1, 5))
        thetas.append(theta[0])
        xs.append(ng.simulate(theta, np.random.default_rng(2000 + k))[0])
    return np.stack(thetas), np.stack(xs)


def _fold(theta: np.ndarray) -> np.ndarray:
    """θ with θ3, θ4 replaced by their absolute values: the likelihood's invariants."""
    out = theta.copy()
    out[:, 2:4] = np.abs(out[:, 2:4])
    return out


def check(reference: np.ndarray, x0: np.ndarray, n: int = 400_000, seed: int = 0) -> dict[str, float]:
    """Importance-sampling check of a reference: the largest |difference| of the folded posterior
    means and sds, in units of their Monte-Carlo standard errors, and the effective sample size.

    A reference that misses mass, or puts it wrongly across the sign modes, moves the folded
    moments (the flips are checked separately: each (θ3, θ4) quadrant must hold a quarter).
    """
    rng = np.random.default_rng(seed)
    folded = _fold(reference.astype(np.float64))
    mu, cov = folded.mean(0), 4 * np.cov(folded.T) + 1e-6 * np.eye(5)
    from_gauss = rng.random(n) < 0.9
    theta = np.where(from_gauss[:, None], rng.multivariate_normal(mu, cov, n), rng.uniform(-3, 3, (n, 5)))
    theta[:, 2:4] *= np.where(rng.random((n, 2)) < 0.5, -1.0, 1.0)  # the Gaussian covers all four sign modes
    inside = (np.abs(theta) <= 3).all(1)
    # q(θ) of the mixture: the Gaussian's density averaged over the four sign flips of (θ3, θ4)
    inv, log_norm = np.linalg.inv(cov), -0.5 * np.linalg.slogdet(2 * np.pi * cov)[1]
    flips = [np.array([1, 1, a, b, 1.0]) for a in (1, -1) for b in (1, -1)]
    log_gauss = np.logaddexp.reduce([-0.5 * np.einsum("ni,ij,nj->n", theta * s - mu, inv, theta * s - mu)
                                     for s in flips], axis=0) + log_norm - np.log(4)
    log_q = np.logaddexp(np.log(0.9) + log_gauss, np.log(0.1) - 5 * np.log(6.0))
    log_w = np.where(inside, ng.log_likelihood(theta, x0) - 5 * np.log(6.0) - log_q, -np.inf)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    ess = 1.0 / (w**2).sum()
    f = _fold(theta)
    mean_is = w @ f
    sd_is = np.sqrt(w @ (f - mean_is) ** 2)
    sd_ref = folded.std(0)
    se_mean = np.sqrt(sd_ref**2 / ess + sd_ref**2 / len(folded))
    # the sd's standard error from the fourth moment: θ1's spread scales with θ3², so tails are heavy
    m4 = ((folded - folded.mean(0)) ** 4).mean(0)
    se_sd = np.sqrt((m4 - sd_ref**4) * (1 / ess + 1 / len(folded))) / (2 * sd_ref)
    quadrants = [((np.sign(reference[:, 2]) == a) & (np.sign(reference[:, 3]) == b)).mean()
                 for a in (1, -1) for b in (1, -1)]
    return {"ess": float(ess), "mean_z": float((np.abs(mean_is - folded.mean(0)) / se_mean).max()),
            "sd_z": float((np.abs(sd_is - sd_ref) / se_sd).max()),
            "quadrant_error": float(np.abs(np.array(quadrants) - 0.25).max())}


def main() -> None:
    import torch
    from ng_reference import reference_samples

    torch.set_num_threads(1)
    theta, x0 = observations()
    references = np.stack([reference_samples(N_REFERENCE, x0=x, seed=k) for k, x in enumerate(x0)])
    for k in range(len(x0)):
        print(k, "θ", theta[k].round(2), {k2: round(v, 2) for k2, v in check(references[k], x0[k]).items()}, flush=True)
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, theta=theta, x0=x0, reference=references)


if __name__ == "__main__":
    main()
