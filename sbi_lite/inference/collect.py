"""One round's simulations: n successful (θ, x) pairs from a proposal, failed runs redrawn (the
paper's rule), within a bounded number of attempts and failure fraction — and resumable: the
progress of a round (finished attempts, the θ of the attempt in flight and its finished chunks)
is a ``RoundProgress`` that a checkpoint can hold, so a killed run re-simulates nothing."""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from sbi_lite.simulate import simulate
from sbi_lite.simulate_backends import ChunkResult

__all__ = ["RoundProgress", "RoundSimulations", "simulate_round"]


@dataclass
class RoundSimulations:
    """One round's successful pairs and what it cost to get them."""

    theta: Tensor
    x: Tensor
    failed: int
    errors: dict[str, int]
    messages: dict[str, str]
    seconds_propose: float
    seconds_simulate: float

    def reasons(self) -> str:
        """Failure reasons for the history: ``"ValueError x12 (negative rate); non-finite output x3"``."""
        return "; ".join(f"{k} x{v}" + (f" ({self.messages[k]})" if k in self.messages else "")
                         for k, v in self.errors.items())


@dataclass
class RoundProgress:
    """What a round has simulated so far."""

    thetas: list[Tensor] = field(default_factory=list)
    xs: list[Tensor] = field(default_factory=list)
    failed: int = 0
    drawn: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    attempt: int = 0
    pending: Tensor | None = None  # θ of the attempt being simulated
    chunks: dict[int, ChunkResult] = field(default_factory=dict)  # its finished chunks
    seconds_propose: float = 0.0
    seconds_simulate: float = 0.0

    @property
    def got(self) -> int:
        return sum(len(t) for t in self.thetas)

    def state(self) -> dict[str, Any]:
        """Tensors and plain values only (``torch.load(weights_only=True)`` reads them)."""
        return {**{k: getattr(self, k) for k in ("thetas", "xs", "failed", "drawn", "errors", "messages", "attempt",
                                                 "pending", "seconds_propose", "seconds_simulate")},
                "chunks": {i: _chunk_state(r) for i, r in self.chunks.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RoundProgress:
        return cls(**{**state, "chunks": {int(i): _chunk_from_state(c) for i, c in state["chunks"].items()}})


def _chunk_state(result: ChunkResult) -> dict[str, Any]:
    width = max((len(row) for row in result.rows if row is not None), default=0)
    x = torch.full((len(result.rows), width), math.nan, dtype=torch.float64, device="cpu")
    for i, row in enumerate(result.rows):
        if row is not None:
            x[i] = torch.as_tensor(row, device="cpu")
    return {"x": x, "raised": torch.tensor([row is None for row in result.rows], device="cpu"), "errors": dict(result.errors),
            "messages": dict(result.messages), "rerun": None if result.rerun is None else list(result.rerun)}


def _chunk_from_state(state: dict[str, Any]) -> ChunkResult:
    rows = [None if raised else x.numpy() for x, raised in zip(state["x"], state["raised"].tolist())]
    rerun = None if state["rerun"] is None else tuple(state["rerun"])
    return ChunkResult(rows, Counter(state["errors"]), dict(state["messages"]), rerun)


def simulate_round(simulator, propose: Callable[[int], Tensor], n: int, seed: int, cfg, *,
                   progress: RoundProgress | None = None,
                   save: Callable[[RoundProgress], None] | None = None) -> RoundSimulations:
    """n successful simulations, redrawing θ for failed runs; stops with the reasons when more than
    ``cfg.max_failure_fraction`` of the runs fail. ``progress`` continues an interrupted round;
    ``save(progress)`` is called after every finished chunk."""
    p = progress or RoundProgress()
    while p.attempt < cfg.max_attempts and p.got < n:
        need = n - p.got
        if p.pending is None:
            # ask for a few more than needed once failures are seen, to save rounds of redraws
            ask = need if p.drawn == 0 else math.ceil(need / max(1 - p.failed / p.drawn, 0.05))
            t0 = time.perf_counter()
            p.pending, p.chunks = propose(ask), {}
            p.seconds_propose += time.perf_counter() - t0

        def finished(i: int, result: ChunkResult) -> None:
            p.chunks[i] = result
            if save is not None:
                save(p)

        with warnings.catch_warnings():  # the run warns once, with every round's reasons in the history
            warnings.filterwarnings("ignore", message="the simulator raised", category=UserWarning)
            sims = simulate(simulator, p.pending, seed=seed + p.attempt, progress=cfg.progress, done=p.chunks,
                            on_chunk=finished, **cfg.simulate_options())
        p.seconds_simulate += sims.seconds
        ok_theta, ok_x = sims.valid()
        p.thetas.append(ok_theta[:need])
        p.xs.append(ok_x[:need])
        p.failed += sims.n_failed
        p.drawn += len(p.pending)
        for k, v in sims.errors.items():
            p.errors[k] = p.errors.get(k, 0) + v
        for k, v in sims.messages.items():
            p.messages.setdefault(k, v)
        p.pending, p.chunks, p.attempt = None, {}, p.attempt + 1
        if p.drawn >= 20 and p.failed / p.drawn > cfg.max_failure_fraction:
            break
    if p.got < n:
        detail = "; ".join(f"{k} x{v}" + (f": {p.messages[k]}" if k in p.messages else "")
                           for k, v in p.errors.items())
        raise RuntimeError(
            f"only {p.got} of {n} simulations succeeded ({p.drawn} runs, failure fraction "
            f"{p.failed / max(p.drawn, 1):.1%}, max_failure_fraction {cfg.max_failure_fraction}); reasons: {detail}")
    return RoundSimulations(torch.cat(p.thetas), torch.cat(p.xs), p.failed, p.errors, p.messages,
                            p.seconds_propose, p.seconds_simulate)
