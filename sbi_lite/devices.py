"""Where tensors live: devices follow the tensors and the networks, never a global default.

The rule of the library: a network computes on the device of its own parameters; callables that
wrap one (potentials, losses, posteriors) move their inputs there and hand results back on the
input's device. Simulations, priors' draws, the round store, slice-sampler chains and posterior
draws stay on the CPU. Random numbers drawn from a ``torch.Generator`` are drawn on the
generator's device (a CPU generator cannot drive a CUDA random op) and then moved, so a seed
means the same stream on every device.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

__all__ = ["check_device", "module_device", "draw_device", "seeded_rng"]


def check_device(name: str, value: Any) -> torch.device:
    """``value`` (a string or ``torch.device``) as a device this machine has.

    Example:
        >>> check_device("device", "cpu")
        device(type='cpu')
    """
    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"{name} must be a device name such as 'cpu' or 'cuda', got {value!r} "
                        f"({type(value).__name__})")
    try:
        device = torch.device(value)
    except RuntimeError:
        raise ValueError(f"{name}={value!r} is not a device name (try 'cpu', 'cuda' or 'cuda:0')") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name}={value!r}, but torch.cuda.is_available() is False on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{name}={value!r}, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{name}={value!r}, but torch.backends.mps.is_available() is False on this machine")
    elif device.type != "cpu":
        raise ValueError(f"{name} must be 'cpu', 'cuda[:index]' or 'mps', got {value!r}")
    return device


def module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter (or buffer); the CPU for a module with neither.

    Example:
        >>> module_device(nn.Linear(2, 1))
        device(type='cpu')
    """
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def draw_device(generator: torch.Generator | None, target: torch.device | str) -> torch.device:
    """Where a random op must run: on ``generator``'s device when one is given (its stream), else
    on ``target`` (that device's global RNG). Draw there, then move to ``target``.

    Example:
        >>> draw_device(torch.Generator(), "cpu"), draw_device(None, "cpu")
        (device(type='cpu'), device(type='cpu'))
    """
    return generator.device if generator is not None else torch.device(target)


@contextmanager
def seeded_rng(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """A scope in which the CPU's global RNG (and ``device``'s, for a CUDA device) starts from
    ``seed``; on exit both are as they were. ``torch.manual_seed`` would also seed every CUDA
    device, whose RNGs ``fork_rng(devices=[])`` does not restore: a CPU run would then change the
    caller's CUDA stream. Other accelerators' RNGs (MPS) are neither seeded nor read.

    Example:
        >>> before = torch.get_rng_state()
        >>> with seeded_rng(3):
        ...     a = torch.rand(2)
        >>> with seeded_rng(3):
        ...     b = torch.rand(2)
        >>> bool(torch.equal(a, b)), bool(torch.equal(before, torch.get_rng_state()))
        (True, True)
    """
    cuda = torch.device(device).type == "cuda"  # a CUDA module's training draws from its RNG too
    with torch.random.fork_rng(devices=[device] if cuda else [], device_type="cuda"):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield
