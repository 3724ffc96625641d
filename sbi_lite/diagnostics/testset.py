"""One set of test simulations for the calibration checks: θ̃, x, posterior draws, log-densities.

θ̃ comes from the prior, or from the prior truncated to a box (``Box``) for sequential
posteriors (``sequential.py``). With a box, the posterior draws at every test x are RESTRICTED to
the box: of ``oversample × L`` draws the first L inside it are kept (i.i.d. draws of q restricted
to the box), and a test x with fewer than L inside ("leaking": its posterior lies largely outside
the box, where a sequential posterior is not trusted) is dropped and counted. Dropping depends on
x and on draws independent of θ̃ given x only, so the kept ranks stay uniform under the null.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from sbi_lite.seeding import Seed, seed_sequence, torch_generator

__all__ = ["Box", "CalibrationSet", "sample_truncated_prior", "make_test_set"]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box [low, high] in θ (each (D,)).

    Example:
        >>> Box(torch.zeros(2), torch.ones(2)).contains(torch.tensor([[0.5, 0.5], [0.5, 2.0]])).tolist()
        [True, False]
    """

    low: Tensor
    high: Tensor

    def __post_init__(self):
        low = torch.as_tensor(self.low, dtype=torch.float64, device="cpu")
        high = torch.as_tensor(self.high, dtype=torch.float64, device="cpu")
        if low.dim() != 1 or low.shape != high.shape or not bool((high > low).all()):
            raise ValueError(f"Box needs low < high of equal shape (D,); got low={low.tolist()}, high={high.tolist()}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def contains(self, theta) -> Tensor:
        """Boolean (...,) for θ of shape (..., D)."""
        theta = torch.as_tensor(theta, dtype=torch.float64, device="cpu")
        return ((theta >= self.low) & (theta <= self.high)).all(-1)


def sample_truncated_prior(prior, box: Box, n: int, *, seed: Seed = 0) -> Tensor:
    """(n, D) draws of the prior truncated to ``box``.

    A ``BoxUniform`` is sampled uniformly on the intersection directly; any other prior by
    rejection of prior draws (``LowAcceptanceError`` when the box holds too little prior mass).

    Example:
        >>> from sbi_lite.priors import BoxUniform
        >>> draws = sample_truncated_prior(BoxUniform(-5 * torch.ones(2), 5 * torch.ones(2)),
        ...                                Box(torch.tensor([4.0, -1.0]), torch.tensor([9.0, 1.0])), 1000)
        >>> bool(draws[:, 0].min() >= 4 and draws[:, 0].max() <= 5)
        True
    """
    from sbi_lite.priors import BoxUniform, as_prior
    from sbi_lite.samplers import rejection_sample

    prior = as_prior(prior)
    if len(box.low) != prior.dim:
        raise ValueError(f"box has D = {len(box.low)} but the prior has dimension {prior.dim}")
    generator = torch_generator(seed)
    dtype = torch.get_default_dtype()
    if isinstance(prior, BoxUniform):
        low = torch.maximum(box.low.to(dtype), prior.low)
        high = torch.minimum(box.high.to(dtype), prior.high)
        if not bool((high > low).all()):
            raise ValueError(f"box {box.low.tolist()}..{box.high.tolist()} does not overlap the prior's support")
        return low + (high - low) * torch.rand(int(n), prior.dim, generator=generator, dtype=dtype, device="cpu")
    return rejection_sample(lambda m: prior.sample((m,), generator=generator), box.contains, int(n))[0].to(dtype)


@dataclass(frozen=True)
class CalibrationSet:
    """Test pairs and posterior draws, ready for ``sbc``, ``expected_coverage`` and ``tarp``.

    Attributes:
        theta: (N, D) θ̃. x: (N, d_x). draws: (N, L, D). log_prob_true: (N,) log q(θ̃|x) or None.
        log_prob_draws: (N, L) or None. num_failed: simulations that failed. num_leaking: test x
        dropped because fewer than L of their draws fell in the box. box: the region or None.
    """

    theta: Tensor
    x: Tensor
    draws: Tensor
    log_prob_true: Tensor | None
    log_prob_draws: Tensor | None
    num_failed: int
    num_leaking: int
    box: Box | None


def _restrict(draws: Tensor, box: Box, num_draws: int) -> tuple[Tensor, Tensor]:
    """(L', N, D) draws -> the first ``num_draws`` inside the box per x (N, L, D), and which x had enough."""
    inside = box.contains(draws)  # (L', N)
    enough = inside.sum(0) >= num_draws
    # stable sort puts the inside draws first, in their original (i.i.d.) order
    order = torch.sort((~inside).to(torch.int8), dim=0, stable=True).indices[:num_draws]  # (L, N)
    kept = torch.gather(draws, 0, order[..., None].expand(-1, -1, draws.shape[-1]))
    return kept.transpose(0, 1), enough


def make_test_set(posterior_sampler: Callable, prior, simulator: Callable, num_simulations: int, num_draws: int, *,
                  box: Box | None = None, log_prob: Callable | None = None, oversample: int = 4, seed: Seed = 0,
                  n_jobs: int = 1, progress: bool | None = None) -> CalibrationSet:
    """θ̃ from the (truncated) prior, x ~ p(x|θ̃), L posterior draws per x (restricted to the box).

    Args:
        posterior_sampler: ``f(x (N, d_x), L, seed=int) -> (L, N, D)`` (batched, samples first).
        prior, simulator: as for ``run_sbc``. num_simulations: N. num_draws: L.
        box: truncate the prior and restrict the draws to it (sequential posteriors), or None.
        log_prob: optional ``g(theta (L, N, D) or (N, D), x (N, d_x)) -> (L, N) or (N,)``, log q(θ|x)
            up to a constant per x.
        oversample: with a box, draws made per kept draw (a test x is kept when ≥ 1/oversample of
            its posterior mass lies in the box).
        seed: one stream for everything. n_jobs, progress: simulation workers and bar.

    Returns:
        ``CalibrationSet``.
    """
    from sbi_lite.priors import as_prior
    from sbi_lite.simulate import simulate

    if int(num_simulations) < 10:
        raise ValueError(f"num_simulations must be >= 10, got {num_simulations}")
    if int(num_draws) < 1:
        raise ValueError(f"num_draws must be >= 1, got {num_draws}")
    if int(oversample) < 1:
        raise ValueError(f"oversample must be >= 1, got {oversample}")
    prior_ss, sim_ss, post_ss = seed_sequence(seed).spawn(3)
    prior = as_prior(prior)
    if box is None:
        theta = prior.sample((int(num_simulations),), generator=torch_generator(prior_ss))
    else:
        theta = sample_truncated_prior(prior, box, int(num_simulations), seed=prior_ss)
    sims = simulate(simulator, theta, seed=sim_ss, n_jobs=n_jobs, progress=progress)
    theta, x = sims.valid()
    if len(theta) < 10:
        raise ValueError(f"only {len(theta)} of {num_simulations} simulations succeeded: {sims.errors}")
    total = int(num_draws) * (int(oversample) if box is not None else 1)
    draws = torch.as_tensor(posterior_sampler(x, total, seed=int(post_ss.generate_state(1)[0])), device="cpu")
    if tuple(draws.shape) != (total, len(x), theta.shape[1]):
        raise ValueError(f"posterior_sampler must return (L, N, D) = {(total, len(x), theta.shape[1])} draws; "
                         f"got {tuple(draws.shape)}")
    if box is None:
        draws, keep = draws.transpose(0, 1), torch.ones(len(x), dtype=torch.bool)
    else:
        draws, keep = _restrict(draws, box, int(num_draws))
    theta, x, draws = theta[keep], x[keep], draws[keep]
    lp_true = lp_draws = None
    if log_prob is not None and len(x):
        with torch.no_grad():
            lp_true = torch.as_tensor(log_prob(theta, x), device="cpu")
            lp_draws = torch.as_tensor(log_prob(draws.transpose(0, 1), x), device="cpu").transpose(0, 1)
        if lp_true.shape != (len(x),) or lp_draws.shape != draws.shape[:2]:
            raise ValueError(f"log_prob must return (N,) for theta (N, D) and (L, N) for theta (L, N, D); got "
                             f"{tuple(lp_true.shape)} and {tuple(lp_draws.shape[::-1])}")
    return CalibrationSet(theta=theta, x=x, draws=draws, log_prob_true=lp_true, log_prob_draws=lp_draws,
                   num_failed=sims.n_failed, num_leaking=int((~keep).sum()), box=box)
