"""SNPE-C, SRE and SNL as small values: which network, which loss, which posterior.

- SNPE-C (atomic APT): q(θ|x). Round 1 by maximum likelihood (which pins q to the prior's
  support); later rounds by the K-class contrastive loss with f = log q(θ|x) − log p(θ).
- SRE: a classifier f(θ, x) trained by the same contrastive loss (K = 2 is Hermans et al.'s
  binary SRE); posterior ∝ exp f(θ, x0) p(θ), sampled by MCMC.
- SNL: q(x|θ) by maximum likelihood on all rounds; posterior ∝ q(x0|θ) p(θ), sampled by MCMC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

from sbi_lite.density import build
from sbi_lite.devices import seeded_rng
from sbi_lite.losses import contrastive_loss
from sbi_lite.posterior import NetworkPotential
from sbi_lite.priors import Prior
from sbi_lite.ratio import RatioEstimator
from sbi_lite.train import TrainConfig

__all__ = ["Method", "METHODS", "build_network"]


def _plain(value: Any) -> Any:
    """Tensors (and tuples of them, e.g. ``bounds``) as nested lists, for a JSON spec."""
    if isinstance(value, Tensor):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def build_network(spec: dict[str, Any], seed: int = 0, device: torch.device | str = "cpu") -> nn.Module:
    """The untrained network that ``Method.spec`` describes (a loaded posterior then takes its
    weights, and any seed-drawn permutations, from a state dict), on ``device``.

    It is built on the CPU and then moved, so a seed gives the same initial weights on every
    device, and a global default device set by the caller (``torch.set_default_device``) does not
    decide where it lives.

    Example:
        >>> from sbi_lite import BoxUniform
        >>> spec = METHODS["snl"].spec(BoxUniform([0.0], [1.0]), 3, "nsf", {"hidden": 8})
        >>> (spec["input_dim"], spec["context_dim"]), build_network(spec).input_dim
        ((3, 1), 3)
    """
    kwargs = spec["estimator_kwargs"]
    with torch.device("cpu"):  # shields construction from a caller's default device (see above)
        if spec["method"] != "sre":
            net = build(spec["estimator"], spec["input_dim"], spec["context_dim"], seed=seed, **kwargs)
        else:
            with seeded_rng(seed):  # the initial weights follow the seed, not the global RNG
                net = RatioEstimator(spec["input_dim"], spec["context_dim"], **kwargs)
    return net.to(device)


@dataclass(frozen=True)
class Method:
    """How one method builds its network, scores a minibatch, and forms its posterior.

    Attributes:
        name: "snpe", "sre" or "snl".
        default_estimator: registry name used when the user gives none.
        clip_grad_norm: the paper's clipping (5 for SNPE-C and SNL, none for SRE).
        direct: the posterior is the network itself (SNPE-C) rather than an MCMC potential.
    """

    name: str
    default_estimator: str | None
    clip_grad_norm: float | None
    direct: bool

    def build(self, prior: Prior, x_dim: int, estimator: str | None, seed: int, estimator_kwargs: dict, *,
              device: torch.device | str = "cpu") -> nn.Module:
        """This method's network on ``device``, built from ``spec`` so that a saved recipe cannot drift from it."""
        return build_network(self.spec(prior, x_dim, estimator, estimator_kwargs), seed, device)

    def spec(self, prior: Prior, x_dim: int, estimator: str | None, estimator_kwargs: dict) -> dict[str, Any]:
        """What ``build`` makes, as JSON-able data (method, estimator name, its keyword arguments
        and the network's input/context dimensions): a saved posterior's recipe for its network."""
        d = prior.dim
        return {"method": self.name, "estimator": None if self.name == "sre" else estimator or self.default_estimator,
                "estimator_kwargs": _plain(dict(estimator_kwargs)),
                "input_dim": x_dim if self.name == "snl" else d, "context_dim": d if self.name == "snl" else x_dim}

    def train_config(self, net: nn.Module) -> TrainConfig:
        """The paper's settings with this method's clipping and the estimator's declared EMA."""
        capabilities = getattr(net, "capabilities", None)
        return TrainConfig(clip_grad_norm=self.clip_grad_norm, ema=capabilities.ema if capabilities else None)

    def standardize(self, net: nn.Module, prior: Prior, theta: Tensor, x: Tensor) -> None:
        """Fix the pre-processing from round 1's data (θ side from the prior's moments for SNPE-C)."""
        if self.name == "snl":
            net.fit_standardization(x, theta)
            return
        net.fit_standardization(theta, x)
        if self.name == "snpe" and hasattr(prior, "stddev") and hasattr(net.input_map, "set"):
            net.input_map.set(prior.mean, prior.stddev)

    def loss(self, net: nn.Module, prior: Prior, round_index: int, num_atoms: int,
             atomic: bool = True) -> Callable[[Tensor, Tensor], Tensor]:
        """Per-sample loss on (θ, x) minibatches for this round (SNPE-C with ``atomic=False``:
        maximum likelihood, for pairs from the prior or prior truncations only)."""
        if self.name == "snl":
            return lambda theta, x: net.loss(x, theta)
        if self.name == "snpe" and (round_index == 0 or not atomic):
            return lambda theta, x: net.loss(theta, x)
        if self.name == "snpe":
            def score(theta, x):
                return net.log_prob(theta, x) - prior.log_prob(theta)
            # the flows: each x's share of the network once, not K times
            call = {"broadcast": getattr(getattr(net, "capabilities", None), "broadcast", False)}
        elif net.critic == "separable":  # all B×B scores from 2B network rows
            score, call = net.pairwise, {"pairwise": True}
        else:
            score, call = net.log_ratio, {"broadcast": True}
        return lambda theta, x: contrastive_loss(score, theta, x, min(num_atoms, len(theta)), **call)

    @staticmethod
    def contrastive(net: nn.Module) -> bool:
        """Whether the network affords the atomic contrastive loss. It needs log q of all B·K
        pairs every step, which only an exact, cheap log-density affords; estimators with an
        estimated or ODE log-density (AEM, diffusion) can only be trained by maximum likelihood on
        truncated-prior proposals (``proposal="truncated"``), under which that loss stays valid."""
        return getattr(net, "capabilities", None) is None or net.capabilities.log_prob == "exact"

    def potential(self, net: nn.Module, prior: Prior, x0: Tensor) -> NetworkPotential:
        """θ (B, d) -> unnormalised log posterior (B,) at x0 (MCMC methods)."""
        return NetworkPotential(net, prior, x0, "likelihood" if self.name == "snl" else "ratio")


METHODS = {
    "snpe": Method("snpe", "maf", 5.0, direct=True),
    "sre": Method("sre", None, None, direct=False),
    "snl": Method("snl", "maf", 5.0, direct=False),
}
