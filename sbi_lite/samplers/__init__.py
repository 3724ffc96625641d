"""Samplers that see only a potential (or a proposal and a support test)."""

from sbi_lite.samplers.rejection import LowAcceptanceError, rejection_sample
from sbi_lite.samplers.slice import SliceSampler

__all__ = ["LowAcceptanceError", "SliceSampler", "rejection_sample"]
