"""The K-class contrastive loss shared by SNPE-C and SRE (maximum likelihood is each
estimator's own ``loss``).

For a minibatch of B pairs (θ_b, x_b), each x_b sees its own θ_b among K − 1 contrasting θ's
drawn without replacement from the other items of the minibatch:

    L_b = −[ f(θ_b, x_b) − logsumexp_{k ∈ set_b} f(θ_k, x_b) ].

SRE takes f as a free classifier logit; SNPE-C (atomic APT) takes f = log q(θ|x) − log p(θ) for
a normalised q. The optimum is f = log p(θ|x)/p(θ) + c(x) whatever the proposal of θ, which is why
all rounds' data can be pooled (Durkan, Murray & Papamakarios 2020). All B·K scores are
evaluated in ONE batched call of the score function. With ``broadcast=True`` that call gets θ as
(B, K, d) (row b holds set_b) and x as (B, 1, c), so a score that broadcasts (the flows, the SRE
classifier) computes each x's share of the network once, on B rows rather than B·K. With
``pairwise=True`` the call gets the minibatch itself and returns all B×B scores, from which each
row's K are gathered: the path of a separable critic, whose B×B scores cost 2B network rows.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["atom_indices", "contrastive_loss"]


def atom_indices(batch_size: int, num_atoms: int, generator: torch.Generator | None = None) -> Tensor:
    """(B, K) indices: column 0 is b itself, columns 1.. are K − 1 distinct others.

    K = B gives the full Cartesian product of the minibatch (every θ against every x). The
    indices are drawn on the CPU (on ``generator``'s device if one is given), so a seed picks the
    same atoms whatever device the minibatch is on; ``contrastive_loss`` moves them there.
    """
    if not 2 <= num_atoms <= batch_size:
        raise ValueError(f"num_atoms must be in [2, batch size {batch_size}], got {num_atoms}")
    device = generator.device if generator is not None else torch.device("cpu")
    own = torch.arange(batch_size, device=device)
    if num_atoms == batch_size:
        others = torch.arange(batch_size, device=device).expand(batch_size, -1)
        others = others[others != own[:, None]].view(batch_size, batch_size - 1)
    else:
        keys = torch.rand(batch_size, batch_size, generator=generator, device=device)
        keys[own, own] = -1.0  # never draw b as its own contrast
        others = keys.topk(num_atoms - 1, dim=1).indices
    return torch.cat([own[:, None], others], 1)


def contrastive_loss(score: Callable[[Tensor, Tensor], Tensor], theta: Tensor, x: Tensor, num_atoms: int,
                     generator: torch.Generator | None = None, *, broadcast: bool = False,
                     pairwise: bool = False) -> Tensor:
    """Per-pair K-class contrastive loss (B,).

    Args:
        score: f(θ (N, d), x (N, c)) -> (N,), evaluated once on all B·K pairs.
        theta, x: the minibatch, (B, d) and (B, c).
        num_atoms: K in [2, B].
        generator: draws the contrasting atoms.
        broadcast: call f once on θ (B, K, d) and x (B, 1, c) instead, for an f that broadcasts
            its batch shapes and returns (B, K): the same loss, without B·K copies of x.
        pairwise: call f once on θ (B, d) and x (B, c) instead, for an f that returns (B, B) with
            [i, j] = f(θ_j, x_i): the same loss, from B² scores whatever K.

    Example:
        >>> f = lambda t, x: -(t - x).pow(2).sum(-1)
        >>> contrastive_loss(f, torch.zeros(4, 1), torch.zeros(4, 1), num_atoms=4)
        tensor([1.3863, 1.3863, 1.3863, 1.3863])
        >>> contrastive_loss(f, torch.zeros(4, 1), torch.zeros(4, 1), num_atoms=4, broadcast=True)
        tensor([1.3863, 1.3863, 1.3863, 1.3863])
        >>> g = lambda t, x: -(t[None, :, 0] - x[:, None, 0]) ** 2
        >>> contrastive_loss(g, torch.zeros(4, 1), torch.zeros(4, 1), num_atoms=4, pairwise=True)
        tensor([1.3863, 1.3863, 1.3863, 1.3863])
    """
    if broadcast and pairwise:
        raise ValueError("broadcast and pairwise are two ways to call the score; choose one")
    batch = len(theta)
    idx = atom_indices(batch, num_atoms, generator).to(theta.device)  # (B, K)
    if pairwise:
        scores = score(theta, x).gather(1, idx)
    elif broadcast:
        scores = score(theta[idx], x[:, None])
    else:
        scores = score(theta[idx.reshape(-1)], x.repeat_interleave(num_atoms, 0)).view(batch, num_atoms)
    return torch.logsumexp(scores, dim=1) - scores[:, 0]
