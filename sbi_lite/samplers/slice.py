"""Axis-aligned slice sampling (Neal 2003) with stepping out and shrinkage, run on many chains
at once: every potential call evaluates one point per active chain in a single batch.

The sampler keeps its state (chains, tuned widths) between calls, so the chains persist across
inference rounds; ``set_potential`` swaps the target and burns in again, as the paper did.
``copy`` and ``state_dict``/``from_state`` let a posterior keep a snapshot of that state and
restart from it, so that its draws are a function of a seed.

Devices follow the chains: the sampler's state lives on ``init``'s device and the potential is
called there. Its random numbers are drawn on the generator's device (the CPU by default) and
moved, so a seed gives the same stream of uniforms on every device.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable

import torch
from torch import Tensor

from sbi_lite.samplers.health import ChainHealth, chain_health
from sbi_lite.seeding import Seed, torch_generator

__all__ = ["SliceSampler"]

Potential = Callable[[Tensor], Tensor]


class SliceSampler:
    """Vectorised axis-aligned slice sampler over C chains.

    Args:
        potential: θ (N, d) -> log density (N,), −inf outside the support.
        init: (C, d) starting points with finite potential; the chains live on its device.
        width: initial bracket width (tuned on the first ``tune`` sweeps).
        tune: sweeps used to tune the per-coordinate widths (running mean of final brackets).
        burn_in: sweeps discarded whenever the target changes (including the first).
        max_step_out: bracket expansions per side.
        seed: random stream.
        budget_seconds: a ``sample`` call that runs longer says so once, in a warning with its
            progress and an estimate of the time still to go (None: never).

    Example:
        >>> sampler = SliceSampler(lambda t: -0.5 * t.pow(2).sum(-1), torch.zeros(8, 2), seed=0)
        >>> sampler.sample(400, thin=2).shape
        torch.Size([400, 2])
    """

    def __init__(self, potential: Potential, init: Tensor, *, width: float = 0.01, tune: int = 50,
                 burn_in: int = 200, max_step_out: int = 50, seed: Seed = None,
                 budget_seconds: float | None = None):
        self.potential = potential
        self.chains = init.detach().clone()
        self.evaluations = 0
        self.log_p = self._eval(self.chains)
        if not torch.isfinite(self.log_p).all():
            bad = torch.nonzero(~torch.isfinite(self.log_p))[:, 0].tolist()
            raise ValueError(f"initial chains {bad} have non-finite potential")
        self.widths = torch.full((init.shape[1],), float(width), device=init.device)
        self.tune, self.burn_in, self.max_step_out = tune, burn_in, max_step_out
        self.generator = torch_generator(seed)
        self.tuned = False
        self.needs_burn_in = True
        self.budget_seconds = budget_seconds
        self._call: tuple[float, int, bool] = (0.0, 0, False)  # this sample call: start time, sweeps planned, warned
        self._done = 0  # sweeps made in this sample call
        self._trace: Tensor | None = None  # the last sample call's every sweep, (C, S, d), for last_health

    def state(self) -> dict[str, Any]:
        """Everything that determines the chains' future, as tensors and plain values (a
        checkpoint; ``torch.load(weights_only=True)`` reads it)."""
        return {"chains": self.chains.clone(), "log_p": self.log_p.clone(), "widths": self.widths.clone(),
                "tuned": self.tuned, "needs_burn_in": self.needs_burn_in, "tune": self.tune,
                "burn_in": self.burn_in, "max_step_out": self.max_step_out, "evaluations": self.evaluations,
                "budget_seconds": self.budget_seconds, "generator": self.generator.get_state(),
                "generator_device": str(self.generator.device)}

    def set_potential(self, potential: Potential) -> None:
        """Change the target; the chains stay where they are and burn in on the next call."""
        self.potential = potential
        self.log_p = self._eval(self.chains)
        stuck = ~torch.isfinite(self.log_p)
        if stuck.any():
            raise ValueError(f"{int(stuck.sum())} chains sit where the new potential is -inf")
        self.needs_burn_in = True

    def copy(self) -> SliceSampler:
        """An independent sampler with the same potential, state and random stream position."""
        return SliceSampler.from_state(self.potential, self.state())

    @classmethod
    def from_state(cls, potential: Potential, state: dict[str, Any]) -> SliceSampler:
        """A sampler continuing from ``state()``, without evaluating the potential (its values
        at the chains come from the state).

        Example:
            >>> s = SliceSampler(lambda t: -0.5 * t.pow(2).sum(-1), torch.zeros(4, 1), seed=0, burn_in=5)
            >>> t = SliceSampler.from_state(s.potential, s.state())
            >>> torch.equal(s.sample(8), t.sample(8))
            True
        """
        new = cls.__new__(cls)
        new.potential = potential
        new.chains, new.log_p, new.widths = (state[k].clone() for k in ("chains", "log_p", "widths"))
        new.tuned, new.needs_burn_in = bool(state["tuned"]), bool(state["needs_burn_in"])
        new.tune, new.burn_in, new.max_step_out = int(state["tune"]), int(state["burn_in"]), int(state["max_step_out"])
        new.evaluations, new.budget_seconds = int(state["evaluations"]), state["budget_seconds"]
        new.generator = torch.Generator(device=state.get("generator_device", "cpu")).set_state(state["generator"].clone())
        new._call, new._done, new._trace = (0.0, 0, False), 0, None
        return new

    def _eval(self, theta: Tensor) -> Tensor:
        # no graph, ever: the state lives for the whole run and is updated in place
        self.evaluations += len(theta)
        with torch.no_grad():
            out = self.potential(theta)
        # NaN counts as outside the support; nan_to_num would also turn −inf into a finite floor
        return torch.where(torch.isnan(out), -torch.inf, out.detach())

    def _uniform(self, n: int) -> Tensor:
        """n U(0, 1) numbers from the sampler's stream, on the chains' device."""
        return torch.rand(n, generator=self.generator, device=self.generator.device).to(self.chains.device)

    def _update(self, j: int, tuning: list[Tensor] | None) -> None:
        x, c = self.chains, len(self.chains)
        w = self.widths[j]
        # the level in float64: at a float32 potential of ~1e8, log_p + log U rounds back to log_p and
        # no point but x itself is ever "above" it
        level = self.log_p.double() + torch.log(self._uniform(c)).double()
        left = x[:, j] - w * self._uniform(c)
        right = left + w
        for side, sign in ((left, -1.0), (right, 1.0)):
            active = torch.arange(c, device=x.device)
            for _ in range(self.max_step_out):
                probe = x[active].clone()
                probe[:, j] = side[active]
                above = self._eval(probe) > level[active]
                active = active[above]
                if not active.numel():
                    break
                side[active] += sign * w
        if tuning is not None:
            tuning.append((right - left).mean())
        pending = torch.arange(c, device=x.device)
        new = x[:, j].clone()
        while pending.numel():
            # a bracket shrunk to nothing (a potential too steep for float32) leaves the chain where it is
            collapsed = (right[pending] - left[pending]) <= 1e-7 * (1 + x[pending, j].abs())
            pending = pending[~collapsed]
            lo, hi = left[pending], right[pending]
            cand = lo + (hi - lo) * self._uniform(len(pending))
            probe = x[pending].clone()
            probe[:, j] = cand
            lp = self._eval(probe)
            ok = lp > level[pending]
            new[pending[ok]] = cand[ok]
            self.log_p[pending[ok]] = lp[ok]
            shrink = pending[~ok]
            below = cand[~ok] < x[shrink, j]
            left[shrink[below]] = cand[~ok][below]
            right[shrink[~below]] = cand[~ok][~below]
            pending = shrink
        x[:, j] = new

    def sweep(self, tuning: list[list[Tensor]] | None = None) -> None:
        """One update of every coordinate, in a freshly shuffled order, for all chains."""
        order = torch.randperm(self.chains.shape[1], generator=self.generator, device=self.generator.device)
        for j in order.tolist():
            self._update(j, None if tuning is None else tuning[j])
        self._done += 1

    def run(self, sweeps: int) -> None:
        for _ in range(sweeps):
            self.sweep()
            self._check_budget()

    def _check_budget(self) -> None:
        start, planned, warned = self._call
        if warned or self.budget_seconds is None or planned == 0:
            return
        elapsed = time.perf_counter() - start
        if elapsed > self.budget_seconds:
            done = self._done
            warnings.warn(
                f"slice sampling has run {elapsed:.0f} s, over its budget of {self.budget_seconds:.0f} s: {done} of "
                f"{planned} sweeps over {len(self.chains)} chains ({self.evaluations:,} potential evaluations so far), "
                f"about {elapsed / max(done, 1) * (planned - done):.0f} s to go. The potential is expensive: use "
                "fewer chains, a cheaper estimator, or fewer draws.", RuntimeWarning, stacklevel=2)
            self._call = (start, planned, True)

    def _begin_call(self, sweeps: int) -> None:
        """Start the budget clock for a call that makes ``sweeps`` sweeps after any warm-up due."""
        planned = (0 if self.tuned else self.tune) + (self.burn_in if self.needs_burn_in else 0) + sweeps
        self._call, self._done = (time.perf_counter(), planned, False), 0

    def last_health(self) -> ChainHealth:
        """Nested R-hat and bulk ESS of the last ``sample`` call's unthinned trace (every sweep
        after burn-in, C chains × draws·thin); NaN before any call. See ``samplers.health``.

        Example:
            >>> s = SliceSampler(lambda t: -0.5 * t.pow(2).sum(-1), torch.randn(100, 2), seed=0)
            >>> _ = s.sample(1000)
            >>> s.last_health().rhat < 1.01
            True
        """
        if self._trace is None:
            return ChainHealth(math.nan, math.nan)
        return chain_health(self._trace)

    def warm_up(self) -> None:
        """Tune the widths (once in the sampler's life) and burn in (once per target), if still due."""
        self._begin_call(0)
        self._prepare()

    def _prepare(self) -> None:
        if not self.tuned:
            tuning: list[list[Tensor]] = [[] for _ in range(self.chains.shape[1])]
            for _ in range(self.tune):
                self.sweep(tuning)
                self._check_budget()
                self.widths = torch.stack([torch.stack(t).mean() for t in tuning])
            self.tuned = True
        if self.needs_burn_in:
            self.run(self.burn_in)
            self.needs_burn_in = False

    def sample(self, n: int, thin: int = 10, *, per_chain: bool = False) -> Tensor:
        """n draws, one kept every ``thin`` sweeps from every chain.

        Returns (n, d), or (C, n / C, d) with ``per_chain`` (for R-hat and ESS). The call's
        unthinned trace is kept (until the next call, not by ``copy``) for ``last_health``.
        """
        c = len(self.chains)
        draws = -(-n // c)
        self._begin_call(draws * thin)
        self._prepare()
        # every sweep, not only the kept ones: R-hat needs the chains' full paths (see last_health)
        trace = []
        for _ in range(draws * thin):
            self.sweep()
            self._check_budget()
            trace.append(self.chains.clone())
        self._trace = torch.stack(trace, 1)  # (C, draws · thin, d)
        stacked = self._trace[:, thin - 1::thin]  # (C, draws, d)
        if per_chain:
            return stacked
        return stacked.transpose(0, 1).reshape(-1, stacked.shape[-1])[:n]
