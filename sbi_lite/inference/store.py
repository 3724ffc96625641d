"""Every simulated pair of a run, with the round (and so the proposal) it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["RoundStore"]


@dataclass
class RoundStore:
    """Every simulated pair, with the round (and so the proposal) it came from."""

    theta: list[Tensor] = field(default_factory=list)
    x: list[Tensor] = field(default_factory=list)
    round: list[Tensor] = field(default_factory=list)

    def add(self, theta: Tensor, x: Tensor, r: int) -> None:
        self.theta.append(theta)
        self.x.append(x)
        self.round.append(torch.full((len(theta),), r, device=theta.device))

    def all(self) -> tuple[Tensor, Tensor]:
        return torch.cat(self.theta), torch.cat(self.x)

    def first_round(self) -> tuple[Tensor, Tensor]:
        """Round 1's pairs (with any initial ones), from which the pre-processing is fitted."""
        theta, x = self.all()
        first = torch.cat(self.round) == 0
        return theta[first], x[first]

    def held_out(self, fraction: float, seed: int) -> Tensor:
        """Boolean (N,): the validation rows, ``fraction`` of each round's pairs, drawn from the
        seed and the round alone, so a pair held out once stays held out in every later round
        (and after a resume) and warm-started training never validates on pairs it trained on."""
        rounds = torch.cat(self.round)
        mask = torch.zeros(len(rounds), dtype=torch.bool, device="cpu")
        for r in rounds.unique().tolist():
            rows = torch.nonzero(rounds == r)[:, 0]
            k = min(max(1, round(fraction * len(rows))), len(rows) - 1)
            generator = torch.Generator().manual_seed(seed + int(r))
            pick = torch.randperm(len(rows), generator=generator, device="cpu")[:k]
            mask[rows[pick]] = True
        return mask

    def state(self) -> dict[str, Tensor]:
        if not self.theta:  # nothing simulated yet
            return {"theta": torch.empty(0, device="cpu"), "x": torch.empty(0, device="cpu"),
                    "round": torch.empty(0, dtype=torch.long, device="cpu")}
        return {"theta": torch.cat(self.theta), "x": torch.cat(self.x), "round": torch.cat(self.round)}

    @classmethod
    def from_state(cls, state: dict[str, Tensor]) -> RoundStore:
        return cls([state["theta"]], [state["x"]], [state["round"]]) if len(state["theta"]) else cls()
