"""Turning a user's ``seed`` argument into independent random streams.

Every entry point takes ``seed: int | torch.Generator | numpy Generator | None``. Library code
never touches the global torch or numpy RNGs; it derives explicit generators from the seed.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["Seed", "check_seed", "seed_sequence", "torch_generator", "spawn_int"]

Seed = int | np.random.SeedSequence | np.random.Generator | torch.Generator | None


def check_seed(seed: Seed) -> None:
    """Raise the error ``seed_sequence`` would raise, without consuming a Generator's stream."""
    if isinstance(seed, bool):
        raise TypeError(f"seed must be an int, a numpy/torch Generator or None, got {seed!r}")
    if not isinstance(seed, (np.random.Generator, torch.Generator)):
        seed_sequence(seed)


def seed_sequence(seed: Seed) -> np.random.SeedSequence:
    """A numpy SeedSequence for ``seed`` (fresh OS entropy when ``seed`` is None).

    Generators are consumed: two calls with the same Generator give different sequences, which
    is what a caller threading one generator through several steps wants.

    Example:
        >>> seed_sequence(0).entropy
        0
    """
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, (int, np.integer)):
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        return np.random.SeedSequence(int(seed))
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(2**63)))
    if isinstance(seed, torch.Generator):
        return np.random.SeedSequence(int(torch.randint(2**62, (1,), generator=seed, device=seed.device)))
    raise TypeError(f"seed must be an int, a numpy/torch Generator or None, got {type(seed).__name__}")


def spawn_int(seed: Seed) -> int:
    """One 63-bit integer drawn from ``seed``'s stream."""
    return int(seed_sequence(seed).generate_state(2, np.uint32).view(np.uint64)[0] >> np.uint64(1))


def torch_generator(seed: Seed) -> torch.Generator:
    """A CPU ``torch.Generator``; a Generator passed in is returned as is (so state advances).

    CPU, whatever device the computation runs on: random numbers are drawn on the generator's
    device and moved (``sbi_lite.devices``), so a seed gives the same stream everywhere.
    """
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator(device="cpu").manual_seed(spawn_int(seed))
