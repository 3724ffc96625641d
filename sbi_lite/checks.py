"""Argument checks shared by the public entry points: every error names the argument and the
value, and is raised before any simulation is spent."""

from __future__ import annotations

import numbers
import sys
from typing import Any, Iterable

__all__ = ["check_int", "check_bool", "check_choice", "check_positive", "progress_enabled"]


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an int (bools and floats refused), at least ``minimum``.

    Example:
        >>> check_int("rounds", 3, minimum=1)
        3
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (a numpy bool too); 0/1 and strings are refused."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_positive(name: str, value: Any, *, allow_none: bool = False, below: float | None = None) -> float | None:
    """``value`` as a float > 0, and < ``below`` where given (or None where allowed).

    Example:
        >>> check_positive("truncation_tail", 0.01, below=0.5)
        0.01
    """
    if value is None and allow_none:
        return None
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0
            or (below is not None and not value < below)):
        bound = "> 0" if below is None else f"in (0, {below})"
        raise ValueError(f"{name} must be a number {bound}{' or None' if allow_none else ''}, got {value!r}")
    return float(value)


def progress_enabled(progress: bool | None) -> bool:
    """Whether to show a progress bar: ``progress`` if given, else only when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)
