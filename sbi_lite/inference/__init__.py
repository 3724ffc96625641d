"""The round-based inference engine.

- ``methods``: SNPE-C, SRE and SNL as small values (network, loss, posterior).
- ``rounds``: Algorithm 1, the only place where the stages meet.
- ``store``: every simulated pair with its round; validation rows held out per round.
- ``collect``: one round's simulations, failed runs redrawn, resumable within the round.
- ``truncation``: SNPE-C's truncated proposals (the prior cut to q's highest-density region).
- ``checkpoint``: a run's state, written atomically after every round and as simulations finish.
- ``presets``: "default" (chosen by measurement) and "paper" settings for ``infer``.
"""

from sbi_lite.inference.methods import METHODS, Method
from sbi_lite.inference.rounds import RoundConfig, run_rounds
from sbi_lite.inference.store import RoundStore

__all__ = ["METHODS", "Method", "RoundConfig", "RoundStore", "run_rounds"]
