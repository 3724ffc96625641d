"""Axis-aligned slice sampling (Neal 2003) with stepping out and shrinkage, run on many chains
at once: every potential call evaluates ``slots`` points of every chain in a single batch.

The chains do not wait for each other: each is at its own stage of its own coordinate update
(stepping out, or shrinking), and one call serves them all, so a sweep costs about the mean
number of calls an update needs (~1.6 on the Nonlinear Gaussian posterior), not the slowest
chain's (~16 when every chain's update was done in lockstep). Shrinkage draws are evaluated
ahead, several per call; a chain stepping out also evaluates shrinkage draws from its current
bracket, used if that bracket is final. ``benchmarks/mcmc_vs_sbi.py`` measures it against sbi.

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
import torch.nn.functional as F
from torch import Tensor

from sbi_lite.samplers.health import ChainHealth, chain_health
from sbi_lite.seeding import Seed, torch_generator

__all__ = ["SliceSampler"]

Potential = Callable[[Tensor], Tensor]


class SliceSampler:
    """Vectorised axis-aligned slice sampler over C chains.

    Each potential call evaluates ``slots`` points per chain (C · slots in one batch); see
    ``_advance`` for how the chains use them.

    Args:
        potential: θ (N, d) -> log density (N,), −inf outside the support.
        init: (C, d) starting points with finite potential; the chains live on its device.
        width: initial bracket width (tuned on the first ``tune`` sweeps).
        tune: sweeps used to tune the per-coordinate widths (running mean of the brackets the
            accepted points were drawn from, followed as they come).
        burn_in: sweeps discarded whenever the target changes (including the first).
        max_step_out: bracket expansions per side (0: the first bracket, of the tuned width, is used
            as it is and no ends are evaluated).
        seed: random stream.
        budget_seconds: a ``sample`` call that runs longer says so once, in a warning with its
            progress and an estimate of the time still to go (None: never).

    Example:
        >>> sampler = SliceSampler(lambda t: -0.5 * t.pow(2).sum(-1), torch.zeros(8, 2), seed=0)
        >>> sampler.sample(400, thin=2).shape
        torch.Size([400, 2])
    """

    slots = 6  # points per chain per potential call: shrinkage candidates (and the 2 ends while stepping out)

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
        self._done = self._done_before = 0  # sweeps made in this sample call (before the current _advance)
        self.calls = 0  # potential calls made by sweeps
        self._trace: Tensor | None = None  # the last sample call's every sweep, (C, S, d), for last_health

    def state(self) -> dict[str, Any]:
        """Everything that determines the chains' future, as tensors and plain values (a
        checkpoint; ``torch.load(weights_only=True)`` reads it)."""
        return {"chains": self.chains.clone(), "log_p": self.log_p.clone(), "widths": self.widths.clone(),
                "tuned": self.tuned, "needs_burn_in": self.needs_burn_in, "tune": self.tune,
                "burn_in": self.burn_in, "max_step_out": self.max_step_out, "evaluations": self.evaluations, "calls": self.calls,
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
        new._call, new._done, new._done_before, new._trace = (0.0, 0, False), 0, 0, None
        new.calls = int(state.get("calls", 0))
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

    def _advance(self, sweeps: int, trace: Tensor | None = None, tuning: bool = False) -> None:
        """Every chain makes ``sweeps`` more sweeps; ``trace`` (C, sweeps, d) receives each chain's
        position after each of its sweeps.

        The chains run asynchronously: every potential call evaluates ``slots`` points of every
        chain, each chain at its own stage of its own coordinate update, so the number of calls is
        about the mean, not the maximum over chains, of the work one update needs. Shrinkage
        (Neal 2003, fig. 5) is evaluated ahead: the h-th candidate is drawn from the bracket the
        first h − 1 would leave if they were all rejected, and the first one inside the slice is
        taken: the same draw as shrinking one candidate at a time, in fewer calls. A chain still
        stepping out evaluates the next end of each side in one call, and in the same call
        ``slots − 2`` shrinkage candidates from its current bracket, which it uses if that bracket
        turns out to be the final one (no side grew); otherwise they are discarded, which leaves
        the draw's law unchanged since whether they are used does not depend on them. With
        ``tuning`` the per-coordinate widths follow the running mean of the brackets the accepted
        points were drawn from.
        """
        x, log_p = self.chains, self.log_p
        c, d = x.shape
        dev, dt = x.device, x.dtype
        slots = self.slots
        spec = slots - 2  # shrinkage candidates evaluated while stepping out
        can_step = self.max_step_out > 0  # without stepping out the bracket is the first one (no ends to evaluate)
        rows = torch.arange(c, device=dev)
        sign = torch.tensor([-1.0, 1.0], device=dev, dtype=dt)
        early = (torch.arange(slots, device=dev) < spec)[None]
        orders = torch.rand(c, sweeps, d, generator=self.generator, device=self.generator.device).argsort(-1).to(dev)
        done = torch.zeros(c, dtype=torch.long, device=dev)  # sweeps finished in this call
        pos = torch.zeros(c, dtype=torch.long, device=dev)  # coordinates finished in the current sweep
        if tuning:
            total = torch.zeros(d, dtype=dt, device=dev)
            count = torch.zeros(d, dtype=dt, device=dev)
        # the update under way: coordinate j, width w, slice level, bracket (lo, hi) (while stepping
        # out: the next ends to evaluate), its open sides and their expansions, the stage
        j = orders[:, 0, 0]
        w = self.widths[j].to(dt)
        u = self._uniform(2 * c).view(2, c)
        level = log_p.double() + torch.log(u[0]).double()
        lo = x[rows, j] - w * u[1]
        br = torch.stack([lo, lo + w], 1)
        opn = torch.ones(c, 2, dtype=torch.bool, device=dev)
        grown = torch.zeros(c, 2, dtype=torch.long, device=dev)
        stepping = torch.full((c,), can_step, device=dev)
        active = torch.ones(c, dtype=torch.bool, device=dev)
        calls = 0
        while True:
            xj = x[rows, j]
            u = self._uniform(c * (slots + 2)).view(slots + 2, c)
            # the chain of shrinkage candidates from the bracket, and the brackets they leave
            a, b = br.unbind(1)
            shrunk, spans, ab_spec = [], [], (a, b)
            for h in range(slots):
                if tuning:
                    spans.append(b - a)
                t = torch.addcmul(a, b - a, u[2 + h])
                shrunk.append(t)
                below = t < xj
                a, b = torch.where(below, t, a), torch.where(below, b, t)
                if h == spec - 1:
                    ab_spec = (a, b)
            shrunk = torch.stack(shrunk, 1)
            cand = torch.where(stepping[:, None], torch.cat([shrunk[:, :spec], br], 1), shrunk)
            probe = x[:, None, :].expand(c, slots, d).clone()
            probe.scatter_(2, j[:, None, None].expand(c, slots, 1), cand[..., None])
            lp = self._eval(probe.view(c * slots, d)).view(c, slots)
            above = lp.double() > level[:, None]
            calls += 1
            # stepping out: an end above the level moves out by w, one below closes its side
            grow = opn & stepping[:, None]
            out = grow & above[:, spec:]
            final = stepping & ~out.any(1)  # the bracket is the one the candidates came from
            br = torch.addcmul(br, out, sign * w[:, None])
            grown += out
            opn = opn & (out & (grown < self.max_step_out) | ~grow)
            # shrinking: the first candidate inside the slice, or the bracket all of them leave
            shrinking = active & ~stepping
            hit = above & (shrinking[:, None] | final[:, None] & early)
            found = hit.any(1)
            first = hit.long().argmax(1)
            missed = ~found & (shrinking | final)
            br = torch.where(missed[:, None], torch.where(shrinking[:, None], torch.stack([a, b], 1),
                                                          torch.stack(ab_spec, 1)), br)
            # a bracket shrunk to nothing (a potential too steep for float32) leaves the chain where it is
            collapsed = missed & ((br[:, 1] - br[:, 0]) <= 1e-7 * (1 + xj.abs()))
            x[rows, j] = torch.where(found, cand[rows, first], xj)
            log_p.copy_(torch.where(found, lp[rows, first], log_p))
            if tuning:  # the bracket the accepted point was drawn from (as sbi's tuning)
                # sums over one-hot rows, not index_add_: CUDA adds those atomically in no fixed
                # order, so the widths, and every draw after them, would vary from run to run
                hot = F.one_hot(j, d).bool() & found[:, None]
                total += torch.where(hot, torch.stack(spans, 1)[rows, first][:, None], 0).sum(0)
                count += hot.sum(0)
            stepping = stepping & opn.any(1)
            finished = found | collapsed
            # the next coordinate, and the next sweep
            pos = pos + finished
            swept = pos == d
            pos = torch.where(swept, 0, pos)
            done = done + swept
            if trace is not None and bool(swept.any()):
                k = rows[swept]
                trace[k, done[k] - 1] = x[k]
            active = done < sweeps
            if calls % 32 == 0:
                self._done = self._done_before + int(done.min())
                self._check_budget()
            if not bool(active.any()):
                break
            if tuning:  # the widths follow the brackets as they come, from the first updates on
                self.widths = torch.where(count > 0, total / count.clamp(min=1), self.widths)
            new = finished & active
            j = torch.where(new, orders[rows, done.clamp(max=sweeps - 1), pos], j)
            w = torch.where(new, self.widths[j].to(dt), w)
            level = torch.where(new, log_p.double() + torch.log(u[0]).double(), level)
            lo = x[rows, j] - w * u[1]
            br = torch.where(new[:, None], torch.stack([lo, lo + w], 1), br)
            opn = opn | new[:, None]
            grown = grown * ~new[:, None]
            stepping = stepping | new & can_step
        if tuning:
            self.widths = torch.where(count > 0, total / count.clamp(min=1), self.widths)
        self.calls += calls
        self._done = self._done_before = self._done_before + sweeps

    def sweep(self) -> None:
        """One update of every coordinate, in a freshly shuffled order, for every chain."""
        self._advance(1)

    def run(self, sweeps: int) -> None:
        """``sweeps`` sweeps of every chain."""
        if sweeps > 0:
            self._advance(sweeps)

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
        self._call, self._done, self._done_before = (time.perf_counter(), planned, False), 0, 0

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
            if self.tune > 0:
                self._advance(self.tune, tuning=True)
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
        self._trace = self.chains.new_empty(c, draws * thin, self.chains.shape[1])  # (C, draws · thin, d)
        if draws * thin > 0:
            self._advance(draws * thin, trace=self._trace)
        stacked = self._trace[:, thin - 1::thin]  # (C, draws, d)
        if per_chain:
            return stacked
        return stacked.transpose(0, 1).reshape(-1, stacked.shape[-1])[:n]
