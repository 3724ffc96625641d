"""Posterior diagnostics."""

from sbi_lite.diagnostics.c2st import c2st

__all__ = ["c2st"]
