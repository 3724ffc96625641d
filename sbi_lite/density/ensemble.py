"""An equal-weight ensemble of independently initialised estimators of one kind.

q(y|c) = (1/E) Σ_e q_e(y|c). The members are trained together on the same minibatches, each by
its own loss (the loss is their sum): a deep ensemble, not one mixture fitted by maximum
likelihood, which would let members specialise. Averaging E fits cancels part of each fit's
error where the members disagree, at E times the cost.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sbi_lite.checks import check_choice
from sbi_lite.density.base import ConditionalDensityEstimator, as_context_batch

__all__ = ["DEFAULT_MEMBER", "Ensemble", "check_member"]

DEFAULT_MEMBER = "nsf"


def check_member(member: object, name: str = "member") -> str:
    """``member`` if an ensemble can hold it: a registered estimator other than "ensemble".

    Example:
        >>> check_member("maf")
        'maf'
    """
    from sbi_lite.density.registry import REGISTRY

    return check_choice(name, member, [n for n in sorted(REGISTRY) if n != "ensemble"])


class _Broadcast:
    """Calls ``set`` on every member's input map, so that the engine can fix an ensemble's
    pre-processing like one estimator's (SNPE-C sets θ's from the prior's moments)."""

    def __init__(self, maps: list):
        self.maps = maps

    def set(self, *args) -> None:
        for m in self.maps:
            m.set(*args)


class Ensemble(ConditionalDensityEstimator):
    """E estimators ``member`` with seeds seed, seed + 1, ..., averaged as densities.

    Args:
        input_dim, context_dim: D and C.
        members: E ≥ 2.
        member: the registry name of the members ("nsf" by default; any estimator with an exact
            log-density).
        seed: the first member's seed.
        **hyperparameters: passed to every member's builder.

    Example:
        >>> q = Ensemble(2, 3, members=2, hidden=8)
        >>> q.log_prob(torch.randn(4, 2), torch.randn(4, 3)).shape, q.sample(5, torch.randn(3)).shape
        (torch.Size([4]), torch.Size([5, 2]))
    """

    def __init__(self, input_dim: int, context_dim: int, *, members: int = 2, member: str = DEFAULT_MEMBER,
                 seed: int = 0, **hyperparameters):
        super().__init__()
        from sbi_lite.density.registry import build

        if not isinstance(members, int) or isinstance(members, bool) or members < 2:
            raise ValueError(f"members must be an integer >= 2, got members={members!r}")
        check_member(member)
        self.input_dim, self.context_dim = input_dim, context_dim
        self.members = nn.ModuleList(build(member, input_dim, context_dim, seed=seed + e, **hyperparameters)
                                     for e in range(members))
        self.capabilities = self.members[0].capabilities
        if self.capabilities.log_prob != "exact":
            raise ValueError(f"member {member!r} has no exact log-density; an ensemble averages exact densities")

    @property
    def input_map(self) -> _Broadcast | None:
        maps = [getattr(m, "input_map", None) for m in self.members]
        return _Broadcast(maps) if all(hasattr(m, "set") for m in maps) else None

    def fit_standardization(self, inputs: Tensor, context: Tensor) -> None:
        for m in self.members:
            m.fit_standardization(inputs, context)

    def log_prob(self, inputs: Tensor, context: Tensor) -> Tensor:
        each = torch.stack([m.log_prob(inputs, context) for m in self.members])
        return torch.logsumexp(each, 0) - math.log(len(self.members))

    def loss(self, inputs: Tensor, context: Tensor) -> Tensor:
        return sum(m.loss(inputs, context) for m in self.members)

    def sample(self, n: int, context: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        batch, single = as_context_batch(context, self.context_dim)
        # which member draws each sample, then every member draws all n and is picked from: the
        # members' draws stay a function of the generator alone
        pick = torch.randint(len(self.members), (n, len(batch)), generator=generator,
                             device=generator.device if generator is not None else "cpu")
        draws = torch.stack([m.sample(n, batch, generator=generator) for m in self.members])  # (E, n, B, D)
        index = pick.to(draws.device)[None, :, :, None].expand(1, n, len(batch), self.input_dim)
        out = draws.gather(0, index)[0]
        return out[:, 0] if single else out
