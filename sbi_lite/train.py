"""One training loop for every estimator and method.

Adam, minibatches (last incomplete one dropped), a fresh random validation split per call,
early stopping with best-weights restore, gradient-norm clipping. Warm start is the caller
passing the same module again; a fresh optimiser is made on every call. The loop sees only a
module and a per-sample loss callable, never an estimator's internals.
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, fields
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from sbi_lite.devices import module_device, seeded_rng
from sbi_lite.seeding import Seed, spawn_int

__all__ = ["TrainConfig", "History", "adam", "train"]


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; the defaults are the paper's (Adam 5e-4, batch 100, 10% validation,
    patience 20).

    Attributes:
        learning_rate, batch_size, validation_fraction, patience: as named.
        max_epochs: hard cap on epochs.
        clip_grad_norm: max gradient norm, or None for no clipping.
        weight_decay: Adam's L2 weight decay.
        ema: decay of an exponential moving average of the weights (e.g. 0.99), or None. With it,
            validation, early stopping and the returned weights all use the average, which
            smooths the noisy steps of Monte-Carlo losses (score matching, AEM).
        lr_decays: how many times a stalled run goes on from its best weights with the learning
            rate multiplied by ``lr_decay`` before it stops (0: stop at the first stall).
        lr_decay: the factor in (0, 1) of each such step.
        fixed_validation_draws: the validation loss's random draws (a contrastive loss's atoms,
            a Monte-Carlo loss's noise) are the same in every epoch, so that epochs are compared
            on the same draws and early stopping reacts to the weights, not to the draws.
    """

    learning_rate: float = 5e-4
    batch_size: int = 100
    validation_fraction: float = 0.1
    patience: int = 20
    max_epochs: int = 1000
    clip_grad_norm: float | None = 5.0
    weight_decay: float = 0.0
    ema: float | None = None
    lr_decays: int = 0
    lr_decay: float = 0.2
    fixed_validation_draws: bool = False

    def __post_init__(self):
        # plain ints and floats (not numpy scalars, not 400.0 for a count), so that equal settings
        # print alike in a checkpoint's fingerprint and in the history
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in ("clip_grad_norm", "ema"):
                continue
            if f.name == "fixed_validation_draws":
                if not isinstance(value, bool):
                    raise TypeError(f"{f.name} must be True or False, got {f.name}={value!r}")
                continue
            kind = int if f.name in ("batch_size", "patience", "max_epochs", "lr_decays") else float
            try:
                number = kind(value)
            except (TypeError, ValueError):
                raise TypeError(f"{f.name} must be a number, got {f.name}={value!r}") from None
            if isinstance(value, bool) or number != value:
                raise TypeError(f"{f.name} must be {'a whole number' if kind is int else 'a number'}, "
                                f"got {f.name}={value!r}")
            object.__setattr__(self, f.name, number)
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        for name in ("batch_size", "patience", "max_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ValueError(f"ema must be in (0, 1) or None, got {self.ema}")
        if self.lr_decays < 0:
            raise ValueError(f"lr_decays must be >= 0, got {self.lr_decays}")
        if not 0 < self.lr_decay < 1:
            raise ValueError(f"lr_decay must be in (0, 1), got {self.lr_decay}")

    def brief(self) -> str:
        """The call that makes this config, naming only the fields that differ from ``TrainConfig()``'s
        defaults (the paper's SNPE-C settings).

        Example:
            >>> TrainConfig(learning_rate=2e-3, clip_grad_norm=None).brief()
            'TrainConfig(learning_rate=0.002, clip_grad_norm=None)'
        """
        default = TrainConfig()
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                   if getattr(self, f.name) != getattr(default, f.name)]
        return f"TrainConfig({', '.join(changed)})"


@dataclass
class History:
    """Per-epoch losses of one ``train`` call."""

    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def best_validation_loss(self) -> float:
        return self.validation_loss[self.best_epoch] if self.validation_loss else math.nan

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"epoch": range(self.epochs), "train_loss": self.train_loss,
                             "validation_loss": self.validation_loss})


def _mean_loss(loss_fn: Callable[..., Tensor], data: tuple[Tensor, ...], chunk: int = 4096) -> float:
    # equal parts, never a remainder of one row: a contrastive loss needs >= 2 rows to contrast
    n = len(data[0])
    parts = -(-n // chunk)
    total = sum(float(loss_fn(*piece).sum()) for piece in zip(*(d.tensor_split(parts) for d in data)))
    return total / n


def _held_out_first(validation: Tensor, n: int) -> Tensor:
    """Row indices, the validation rows of the mask first."""
    validation = torch.as_tensor(validation, device="cpu")
    if validation.dtype != torch.bool or validation.shape != (n,):
        raise ValueError(f"validation must be a boolean mask of shape ({n},), got {validation.dtype} "
                         f"{tuple(validation.shape)}")
    if not 1 <= int(validation.sum()) <= n - 1:
        raise ValueError(f"validation must hold out at least one row and keep one, got {int(validation.sum())} of {n}")
    return torch.cat([torch.nonzero(validation)[:, 0], torch.nonzero(~validation)[:, 0]])


def adam(module: nn.Module, config: TrainConfig) -> torch.optim.Adam:
    """The loop's optimiser: Adam over ``module``'s parameters with ``config``'s rate and decay.

    ``foreach=True`` updates all parameters in a few batched calls instead of a Python loop per
    tensor: bitwise the same weights, ~40% less optimiser time (benchmarks/results/contrastive_step.md).

    Example:
        >>> adam(nn.Linear(2, 1), TrainConfig()).defaults["foreach"]
        True
    """
    return torch.optim.Adam(module.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                            foreach=True)


@contextmanager
def _swapped(params: list[Tensor], values: list[Tensor] | None):
    """Temporarily give ``params`` the ``values`` (no-op for None)."""
    if values is None:
        yield
        return
    with torch.no_grad():
        kept = [p.detach().clone() for p in params]
        for p, v in zip(params, values):
            p.copy_(v)
        try:
            yield
        finally:
            for p, v in zip(params, kept):
                p.copy_(v)


def train(
    module: nn.Module,
    loss_fn: Callable[..., Tensor],
    data: tuple[Tensor, ...],
    *,
    config: TrainConfig = TrainConfig(),
    seed: Seed = None,
    progress: bool = False,
    validation: Tensor | None = None,
) -> History:
    """Minimise ``loss_fn(*batch).mean()`` over ``module``'s parameters.

    Args:
        module: the model (trained in place; the best validation weights are restored). It trains
            on its own device: move it (``module.to("cuda")``) to train on a GPU.
        loss_fn: per-sample loss of a minibatch, ``loss_fn(*tensors) -> (B,)``; it receives the
            minibatch on ``module``'s device.
        data: tensors with a common first dimension N (e.g. ``(theta, x)``), on any device; the
            split and each minibatch are moved to ``module``'s device.
        config: ``TrainConfig``.
        seed: fixes the split, the shuffling and any randomness inside the loss (dropout,
            atoms, noise), run inside ``torch.random.fork_rng`` so the caller's RNG is untouched
            (the CPU's, and the module's CUDA device's). The split and the shuffling are drawn on
            the CPU, so they are the same on every device.
        progress: show a tqdm bar over epochs.
        validation: a boolean mask (N,) of the rows held out for validation (None: a random
            ``config.validation_fraction`` of them). Training the same module again on grown data
            (a warm start) needs rows that stay held out: rows it has trained on would make the
            validation loss look best at once and stop training early.

    Returns:
        ``History`` of train/validation losses.

    Example:
        >>> net = nn.Linear(1, 1)
        >>> _ = nn.init.zeros_(net.weight), nn.init.zeros_(net.bias)
        >>> x = torch.linspace(-1, 1, 200)[:, None]
        >>> h = train(net, lambda a, b: (net(a) - b).pow(2)[:, 0], (x, 3 * x), seed=0,
        ...           config=TrainConfig(learning_rate=5e-2, batch_size=20, max_epochs=100))
        >>> abs(net.weight.item() - 3) < 0.05
        True
    """
    n = len(data[0])
    if any(len(d) != n for d in data):
        raise ValueError(f"all data tensors need the same length; got {[len(d) for d in data]}")
    if n < 2:
        raise ValueError(f"need at least 2 training examples, got {n}")
    from tqdm.auto import tqdm

    history = History()
    t0 = time.perf_counter()
    device = module_device(module)
    root = spawn_int(seed)
    # the validation draws' own stream, restarted every epoch when they are fixed
    validation_seed = spawn_int(np.random.SeedSequence([root, 1]))
    fixed_draws = (lambda: seeded_rng(validation_seed, device)) if config.fixed_validation_draws else nullcontext
    with seeded_rng(root, device):
        # index permutations on the CPU whatever the module's device: the same seed, the same split
        perm = torch.randperm(n, device="cpu")
        n_val = min(max(1, int(round(config.validation_fraction * n))), n - 1)
        if validation is not None:
            perm, n_val = _held_out_first(validation, n), int(validation.sum())
        val = tuple(d[perm[:n_val].to(d.device)].to(device) for d in data)
        trn = tuple(d[perm[n_val:].to(d.device)].to(device) for d in data)
        batch = min(config.batch_size, len(trn[0]))
        optimizer = adam(module, config)
        best, best_state, stale, decays = math.inf, copy.deepcopy(module.state_dict()), 0, 0
        params = [p for p in module.parameters() if p.requires_grad]
        average = [p.detach().clone() for p in params] if config.ema is not None else None
        # some torch versions make Adam's `step` on the global default device; the guard sends
        # every op of the step through a mode (7% of a default SNPE-C run under cProfile), so it
        # is entered only where it matters
        cpu_default = torch.empty(0).device.type == "cpu"  # torch.get_default_device needs torch 2.3
        bar = tqdm(range(config.max_epochs), desc="train", disable=not progress, leave=False)
        for epoch in bar:
            module.train()
            order = torch.randperm(len(trn[0]), device="cpu").to(device)
            running = 0.0
            steps = len(order) // batch
            for b in range(steps):
                idx = order[b * batch:(b + 1) * batch]
                loss = loss_fn(*(d[idx] for d in trn)).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(params, config.clip_grad_norm)
                with nullcontext() if cpu_default else torch.device("cpu"):
                    optimizer.step()
                if average is not None:
                    with torch.no_grad():
                        for a, p in zip(average, params):
                            a.lerp_(p, 1 - config.ema)
                running += float(loss.detach())
            module.eval()
            with torch.no_grad(), _swapped(params, average), fixed_draws():
                val_loss = _mean_loss(loss_fn, val)
            history.train_loss.append(running / max(steps, 1))
            history.validation_loss.append(val_loss)
            if val_loss < best:
                best, stale, history.best_epoch = val_loss, 0, epoch
                with _swapped(params, average):
                    best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
            bar.set_postfix(val=f"{val_loss:.3f}", best=f"{best:.3f}")
            if stale >= config.patience:
                if decays == config.lr_decays:
                    break
                # go on from the best weights with smaller steps (the optimiser's moments are kept)
                decays, stale = decays + 1, 0
                module.load_state_dict(best_state)
                if average is not None:
                    with torch.no_grad():
                        for a, p in zip(average, params):
                            a.copy_(p)
                for group in optimizer.param_groups:
                    group["lr"] *= config.lr_decay
        module.load_state_dict(best_state)
        module.eval()
    history.seconds = time.perf_counter() - t0
    return history
