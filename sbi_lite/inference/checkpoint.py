"""Checkpoints of a run of rounds: written atomically, read with ``weights_only=True``.

A checkpoint holds everything the round loop needs to continue exactly where it stopped: every
(θ, x) pair with its round, the history rows, the network's weights, the proposal generator's
state, the slice sampler's state, the run's root seed, and a fingerprint of the configuration.
Resuming with a different configuration is refused, naming what changed.

The fingerprint records the training a run resolved to, one ``training.<field>`` entry per
``TrainConfig`` field, not where it came from (the caller, a preset or the method): a changed
preset default then refuses only the runs it changes, and names the ``TrainConfig`` that resumes
them. Checkpoints written before 2026-12-02 recorded ``train`` and ``train_defaults`` instead;
``upgrade_training`` reads them as the training they resolved to. The settings a preset fills
(``num_atoms``, ``estimator``, ``proposal``) are recorded as resolved too, and a refusal over one
names the argument that resumes the run (SRE's default K went from 100 to 50 on 2026-12-02).
"""

from __future__ import annotations

import ast
import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import torch

from sbi_lite.inference.presets import PRESETS
from sbi_lite.train import TrainConfig

__all__ = ["CHECKPOINT_FORMAT", "read_checkpoint", "write_checkpoint", "check_fingerprint", "training_fingerprint",
           "upgrade_training", "upgrade_rows", "stored_training"]

CHECKPOINT_FORMAT = 1
# the settings a preset fills when the caller leaves them as None: a run that took one from a preset
# whose value has changed since is resumed by passing the recorded value
PRESET_SETTINGS = frozenset(k for methods in PRESETS.values() for settings in methods.values() for k in settings)
PREFIX = "training."  # the fingerprint's entries of the resolved TrainConfig


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
    (setting -> sentence) adds a sentence for each changed setting the checkpoint did not record.
    A changed training adds the ``train_config`` that resumes the run, a changed setting that a preset
    fills (``num_atoms``, ``estimator``, ``proposal``) the argument that does."""
    def value(settings: dict[str, Any], k: str) -> str:
        return repr(settings[k]) if k in settings else "not recorded"

    keys = [k for k in sorted(set(stored) | set(current)) if stored.get(k) != current.get(k)]
    if keys:
        hints = hints or {}
        notes = "".join(f" {hints[k]}" for k in keys if k not in stored and k in hints)
        if any(k.startswith(PREFIX) for k in keys) and (config := stored_training(stored)) is not None:
            notes += (f" The checkpoint's run trained with train_config={config.brief()}; passing that resumes it "
                      "if nothing else changed.")
        if given := [f"{k}={stored[k]}" for k in keys if k in PRESET_SETTINGS and k in stored]:
            notes += (f" A preset's default may have changed since the checkpoint's run, which had {', '.join(given)}; "
                      "passing that resumes it if nothing else changed.")
        raise ValueError(f"checkpoint {str(path)!r} was written by a run with another configuration; changed: "
                         + "; ".join(f"{k}: {value(stored, k)} -> {value(current, k)}" for k in keys)
                         + ". Resume with the same arguments, or use a new checkpoint path." + notes)


def training_fingerprint(config: TrainConfig) -> dict[str, str]:
    """The fingerprint entries of the training a run resolved to: ``training.<field>`` -> repr.

    Example:
        >>> training_fingerprint(TrainConfig(learning_rate=2e-3))["training.learning_rate"]
        '0.002'
    """
    return {PREFIX + f.name: repr(getattr(config, f.name)) for f in fields(config)}


def stored_training(stored: dict[str, str]) -> TrainConfig | None:
    """The ``TrainConfig`` a fingerprint's ``training.*`` entries record (fields added to
    ``TrainConfig`` since it was written at their defaults), or None where it records none."""
    names = {f.name for f in fields(TrainConfig)}
    try:
        given = {k[len(PREFIX):]: ast.literal_eval(v) for k, v in stored.items() if k.startswith(PREFIX)}
        return TrainConfig(**{k: v for k, v in given.items() if k in names}) if given else None
    except (ValueError, TypeError, SyntaxError):
        return None


def upgrade_training(stored: dict[str, str], method_default: TrainConfig) -> dict[str, str]:
    """``stored`` with a fingerprint's pre-2026-12-02 ``train`` and ``train_defaults`` replaced by
    the ``training.*`` entries they resolved to (``method_default``: the method's own training, what
    ``train=None`` started from), and any field added to ``TrainConfig`` since at its default.
    Left as it is where the old entries cannot be read. A method's own training (its clipping, the
    estimator's EMA) has not changed since checkpoints were first written; were it to change, the
    method's old value would have to be passed here for its old checkpoints."""
    stored = dict(stored)
    if "train" in stored:  # train_defaults is missing in checkpoints written before presets existed
        try:
            if stored["train"] == "None":
                config = replace(method_default, **ast.literal_eval(stored.get("train_defaults", "{}")))
            else:  # the repr of the caller's TrainConfig
                call = ast.parse(stored["train"], mode="eval").body
                config = TrainConfig(**{kw.arg: ast.literal_eval(kw.value) for kw in call.keywords})
        except (ValueError, TypeError, SyntaxError, AttributeError):
            return stored
        del stored["train"]
        stored.pop("train_defaults", None)
        stored.update(training_fingerprint(config))
    if any(k.startswith(PREFIX) for k in stored):
        stored = {**training_fingerprint(TrainConfig()), **stored}
    return stored


def upgrade_rows(rows: list[dict[str, Any]], training: TrainConfig) -> list[dict[str, Any]]:
    """History rows written before rows named their training (before 2026-12-02), given a
    ``training`` column where a fresh row has it, after ``failure_reasons``, so that a resumed
    history's columns are in a fresh one's order."""
    def upgraded(row: dict[str, Any]) -> dict[str, Any]:
        items = list(row.items())
        at = next((i + 1 for i, (k, _) in enumerate(items) if k == "failure_reasons"), len(items))
        return dict(items[:at] + [("training", training.brief())] + items[at:])
    return [row if "training" in row else upgraded(row) for row in rows]
