"""Exploratory replacements of one function of sbi_lite's round loop for a benchmark run (ng_accuracy's
ROUND_PATCHES): measured as variants, not options of infer."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace

__all__ = ["decaying_last_round", "without_first_round", "defensive_proposals"]


@contextmanager
def _replacing(name: str, wrap):
    """``sbi_lite.inference.rounds.<name>`` is ``wrap(the original)`` inside the scope."""
    from sbi_lite.inference import rounds

    plain = getattr(rounds, name)
    setattr(rounds, name, wrap(plain))
    try:
        yield
    finally:
        setattr(rounds, name, plain)


def decaying_last_round(decays: int, pairs: int):
    """The round loop's training call on ``pairs`` or more pairs (the last round's) gets ``lr_decays=decays``."""

    def wrap(plain):
        def train(net, loss_fn, data, *, config, **kwargs):
            if len(data[0]) >= pairs:
                config = replace(config, lr_decays=decays)
            return plain(net, loss_fn, data, config=config, **kwargs)

        return train

    return _replacing("train", wrap)


def without_first_round(simulations: int):
    """From round 2 on, the round loop trains (and validates) on every pair but round 1's: the store
    puts round 1's ``simulations`` pairs first (a simulator that never fails, as the Nonlinear Gaussian)."""

    def wrap(plain):
        def train(net, loss_fn, data, *, config, validation, **kwargs):
            if len(data[0]) > simulations:
                data, validation = tuple(t[simulations:] for t in data), validation[simulations:]
            return plain(net, loss_fn, data, config=config, validation=validation, **kwargs)

        return train

    return _replacing("train", wrap)


def defensive_proposals(fraction: float):
    """Every truncated proposal draws ``fraction`` of each batch from the whole prior, the rest from
    the truncated prior, in an order shuffled by the round loop's generator. Outside the region the
    proposal is ``fraction`` of the prior's density rather than none, so maximum likelihood still
    learns the posterior inside it."""
    import torch

    def wrap(plain):
        def truncated_prior(prior, draws, gen, **kwargs):
            inner = plain(prior, draws, gen, **kwargs)

            def propose(m: int):
                k = round(fraction * m)
                theta = torch.cat([prior.sample((k,), generator=gen), inner(m - k)])
                return theta[torch.randperm(m, generator=gen)]

            return propose

        return truncated_prior

    return _replacing("truncated_prior", wrap)
