"""Autoregressive Energy Machine (Nash & Durkan 2019): log p(y|c) = Σ_d [−E(y_d; γ_d) − log Z_d].

A ResMADE on y (and the context) emits, for every dimension d, a context vector γ_d and a
mixture-of-Gaussians proposal q_d. One energy network, shared across dimensions, scores
(y_d, γ_d) as −E = −softplus(h) ≤ 0. Each one-dimensional normaliser is estimated by importance
sampling from the proposal,

    log Ẑ_d = logsumexp_s [−E(u_s; γ_d) − log q_d(u_s)] − log S,   u_s ~ q_d (detached),

which is unbiased in Z and biased low in log Z, so log p̂ is slightly too high (Jensen); the bias
shrinks as S grows. Training maximises log p̂ + log q (the proposal learns only from its own
likelihood term); sampling is per-dimension sampling-importance-resampling.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sbi_lite.devices import draw_device
from sbi_lite.density.base import Capabilities, ConditionalDensityEstimator, as_context_batch
from sbi_lite.density.transforms import Standardize
from sbi_lite.nn import MADE, ResidualNet

__all__ = ["AEM", "mog_log_prob", "mog_sample", "mog_transform", "importance_log_z"]


def mog_log_prob(u: Tensor, logits: Tensor, means: Tensor, scales: Tensor) -> Tensor:
    """Mixture-of-Gaussians log-density, u (...,) with parameters (..., M) -> (...,)."""
    comp = -0.5 * ((u[..., None] - means) / scales) ** 2 - torch.log(scales) - 0.5 * math.log(2 * math.pi)
    return torch.logsumexp(torch.log_softmax(logits, -1) + comp, -1)


def mog_transform(uniform: Tensor, normal: Tensor, logits: Tensor, means: Tensor, scales: Tensor) -> Tensor:
    """Mixture draws from base numbers (n,) shared by every mixture: parameters (..., M) -> (n, ...).

    The component is chosen by inverse CDF, so each mixture's draws are a deterministic function
    of its own parameters and the base numbers, whatever else is in the batch (common random numbers).
    """
    n, lead = len(uniform), [1] * (logits.dim() - 1)
    cdf = torch.cumsum(torch.softmax(logits, -1), -1)
    k = (uniform.view(n, *lead, 1) > cdf).sum(-1).clamp_max(logits.shape[-1] - 1)
    mu = means.expand(n, *means.shape).gather(-1, k[..., None])[..., 0]
    sd = scales.expand(n, *scales.shape).gather(-1, k[..., None])[..., 0]
    return mu + sd * normal.view(n, *lead)


def mog_sample(n: int, logits: Tensor, means: Tensor, scales: Tensor,
               generator: torch.Generator | None = None) -> Tensor:
    """n independent draws per mixture: parameters (..., M) -> (n, ...)."""
    # drawn where the generator is (a CPU generator cannot drive a CUDA op), then moved
    device = draw_device(generator, means.device)
    flat = torch.softmax(logits, -1).reshape(-1, logits.shape[-1]).to(device)
    k = torch.multinomial(flat, n, replacement=True, generator=generator).T.reshape(n, *logits.shape[:-1])
    noise = torch.randn(k.shape, generator=generator, dtype=means.dtype, device=device).to(means.device)
    k = k.to(means.device)
    mu = means.expand(n, *means.shape).gather(-1, k[..., None])[..., 0]
    sd = scales.expand(n, *scales.shape).gather(-1, k[..., None])[..., 0]
    return mu + sd * noise


def importance_log_z(log_unnormalised, logits: Tensor, means: Tensor, scales: Tensor, num_samples: int,
                     generator: torch.Generator | None = None, common: bool = False,
                     chunk: int | None = None) -> Tensor:
    """log Ẑ for each 1-D density: ``log_unnormalised(u (S, ...)) -> (S, ...)``; parameters (..., M).

    ``chunk`` caps the samples evaluated per pass (memory); with ``common`` all S base numbers
    are drawn first, so the estimate does not depend on the chunking (nor on the batch). The
    proposal's samples and log-densities are detached: no gradient reaches the proposal through Ẑ.
    """
    logits, means, scales = logits.detach(), means.detach(), scales.detach()
    step = num_samples if chunk is None else max(1, min(chunk, num_samples))
    if common:
        device = draw_device(generator, means.device)
        base = (torch.rand(num_samples, generator=generator, dtype=means.dtype, device=device).to(means.device),
                torch.randn(num_samples, generator=generator, dtype=means.dtype, device=device).to(means.device))
    parts = []
    for start in range(0, num_samples, step):
        n = min(step, num_samples - start)
        if common:
            u = mog_transform(base[0][start:start + n], base[1][start:start + n], logits, means, scales)
        else:
            u = mog_sample(n, logits, means, scales, generator)
        parts.append(torch.logsumexp(log_unnormalised(u) - mog_log_prob(u, logits, means, scales), 0))
    return torch.logsumexp(torch.stack(parts), 0) - math.log(num_samples)


class AEM(ConditionalDensityEstimator):
    """q(y|c) as an Autoregressive Energy Machine.

    Args:
        input_dim, context_dim: D and C.
        hidden, num_blocks: ResMADE width and residual blocks (the thesis: 4 blocks, 256–512;
            smaller here for SBI-sized data).
        context_vector: size of γ_d (thesis 64).
        components: mixture components M of the proposal (thesis 10–20).
        energy_hidden, energy_blocks: the shared energy net.
        train_samples: S during training (thesis 20). eval_samples: S for ``log_prob`` in eval
            mode, which MCMC potentials pay at every step. On a trained AEM, 100 keeps log p̂
            within 0.020-0.023 nats RMS of its S = 20,000 value over three trainings
            (tests/test_aem.py; density mass within 3%) at a tenth of the cost of the thesis's
            1,000 (benchmarks/results/snl_aem.md);
            pass ``num_samples`` (thesis: 20,000) for reported numbers. sir_proposals: N of SIR.
        warmup_steps: optimisation steps that train only the proposal before the energy joins.
        seed: unused, accepted so every builder takes it.

    Example:
        >>> q = AEM(2, 3, hidden=32, context_vector=8, energy_hidden=32)
        >>> q.log_prob(torch.randn(4, 2), torch.randn(4, 3)).shape
        torch.Size([4])
    """

    capabilities = Capabilities(log_prob="estimate", sample_cost="sequential", bounded=False)

    def __init__(self, input_dim: int, context_dim: int, *, hidden: int = 128, num_blocks: int = 2,
                 context_vector: int = 32, components: int = 10, energy_hidden: int = 64, energy_blocks: int = 2,
                 train_samples: int = 20, eval_samples: int = 100, sir_proposals: int = 100,
                 warmup_steps: int = 0, dropout: float = 0.0, seed: int = 0):
        super().__init__()
        self.input_dim, self.context_dim = input_dim, context_dim
        self.context_vector, self.components = context_vector, components
        self.train_samples, self.eval_samples, self.sir_proposals = train_samples, eval_samples, sir_proposals
        self.warmup_steps = warmup_steps
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.input_map, self.context_map = Standardize(input_dim), Standardize(context_dim)
        self.made = MADE(input_dim, context_dim, context_vector + 3 * components, hidden, num_blocks,
                         residual=True, dropout=dropout)
        self.energy = ResidualNet(1 + context_vector, 1, 0, energy_hidden, energy_blocks, dropout=dropout)

    def _heads(self, z: Tensor, c: Tensor):
        out = self.made(z, c)
        m, g = self.components, self.context_vector
        gamma, logits, means = out[..., :g], out[..., g:g + m], out[..., g + m:g + 2 * m]
        scales = 1e-3 + F.softplus(out[..., g + 2 * m:])
        return gamma, logits, means, scales

    def log_unnormalised(self, u: Tensor, gamma: Tensor) -> Tensor:
        """−E(u; γ) = −softplus(h(u, γ)) ≤ 0; u (...,), γ (..., G) broadcast -> (...,)."""
        gamma = gamma.expand(*u.shape, gamma.shape[-1])
        return -F.softplus(self.energy(torch.cat([u[..., None], gamma], -1))[..., 0])

    def _terms(self, inputs: Tensor, context: Tensor, num_samples: int, chunk: int = 50_000):
        z, ld_pre = self.input_map(inputs)
        c, _ = self.context_map(context)
        gamma, logits, means, scales = self._heads(z, c)
        log_e = self.log_unnormalised(z, gamma)  # (B, D)
        # in eval mode the importance samples are common random numbers from a fixed seed, so
        # log_prob is a deterministic function of (y, c): MCMC on it stays a valid slice sampler
        gen = None if self.training else torch.Generator().manual_seed(0)
        log_z = importance_log_z(lambda u: self.log_unnormalised(u, gamma), logits, means, scales, num_samples,
                                 gen, common=not self.training, chunk=chunk // max(1, z.numel()))
        log_q = mog_log_prob(z, logits, means, scales)
        return (log_e - log_z).sum(-1) + ld_pre, log_q.sum(-1) + ld_pre

    def log_prob(self, inputs: Tensor, context: Tensor, num_samples: int | None = None) -> Tensor:
        """Importance-sampled log-density (B,) (slightly biased up; less so for larger S)."""
        s = num_samples or (self.train_samples if self.training else self.eval_samples)
        return self._terms(inputs, context, s)[0]

    def proposal_log_prob(self, inputs: Tensor, context: Tensor) -> Tensor:
        """The exact log-density of the autoregressive MoG proposal (B,)."""
        return self._terms(inputs, context, 1)[1]

    def loss(self, inputs: Tensor, context: Tensor) -> Tensor:
        """−(log p̂ + log q) per sample; only −log q during the proposal warm-up."""
        if self.training:
            self.steps += 1
        if self.training and int(self.steps) <= self.warmup_steps:
            return -self.proposal_log_prob(inputs, context)
        log_p, log_q = self._terms(inputs, context, self.train_samples)
        return -(log_p + log_q)

    @torch.no_grad()
    def sample(self, n: int, context: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        batch, single = as_context_batch(context, self.context_dim)
        c, _ = self.context_map(batch.repeat(n, 1))
        z = torch.zeros(len(c), self.input_dim, dtype=c.dtype, device=c.device)
        device = draw_device(generator, c.device)
        for d in range(self.input_dim):
            gamma, logits, means, scales = (t[:, d] for t in self._heads(z, c))
            u = mog_sample(self.sir_proposals, logits, means, scales, generator)  # (N, rows)
            log_w = self.log_unnormalised(u, gamma) - mog_log_prob(u, logits, means, scales)
            pick = torch.multinomial(torch.softmax(log_w.T, -1).to(device), 1, generator=generator)[:, 0].to(c.device)
            z[:, d] = u.T.gather(1, pick[:, None])[:, 0]
        y, _ = self.input_map.inverse(z)
        y = y.view(n, len(batch), self.input_dim)
        return y[:, 0] if single else y
