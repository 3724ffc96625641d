"""The round-based inference engine."""

from sbi_lite.inference.methods import METHODS, Method
from sbi_lite.inference.rounds import RoundConfig, RoundStore, run_rounds

__all__ = ["METHODS", "Method", "RoundConfig", "RoundStore", "run_rounds"]
