"""Checkpoints of a run of rounds: written atomically, read with ``weights_only=True``.

A checkpoint holds everything the round loop needs to continue exactly where it stopped: every
(θ, x) pair with its round, the history rows, the network's weights, the proposal generator's
state, the slice sampler's state, the run's root seed, and a fingerprint of the configuration.
Resuming with a different configuration is refused, naming what changed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["CHECKPOINT_FORMAT", "read_checkpoint", "write_checkpoint", "check_fingerprint"]

CHECKPOINT_FORMAT = 1


def write_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then a rename,
    so a run killed mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    with open(tmp, "rb") as f:  # the data are on disk before the rename makes them the checkpoint
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (tensors, numbers, strings, lists and dicts only), or None."""
    path = Path(path)
    if not path.exists():
        return None
    # onto the CPU: a run checkpointed on a GPU resumes anywhere (the network moves to its device)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {str(path)!r} has format {state.get('format')!r}; this version of sbi_lite "
                         f"reads format {CHECKPOINT_FORMAT}. Start a new run with another checkpoint path.")
    return state


def check_fingerprint(path: str | os.PathLike, stored: dict[str, Any], current: dict[str, Any], *,
                      hints: dict[str, str] | None = None) -> None:
    """Refuse to resume a run whose configuration changed, naming every changed setting; ``hints``
    (setting -> sentence) adds a sentence for each changed setting the checkpoint did not record."""
    def value(settings: dict[str, Any], k: str) -> str:
        return repr(settings[k]) if k in settings else "not recorded"

    keys = [k for k in sorted(set(stored) | set(current)) if stored.get(k) != current.get(k)]
    if keys:
        hints = hints or {}
        notes = "".join(f" {hints[k]}" for k in keys if k not in stored and k in hints)
        raise ValueError(f"checkpoint {str(path)!r} was written by a run with another configuration; changed: "
                         + "; ".join(f"{k}: {value(stored, k)} -> {value(current, k)}" for k in keys)
                         + ". Resume with the same arguments, or use a new checkpoint path." + notes)
