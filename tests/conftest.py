"""Shared test set-up for running the suite in parallel processes (pytest-xdist, ``make test``).

- Each worker takes one torch thread, so that n workers on n cores do not oversubscribe them;
  the processes a test starts (simulation workers, notebook kernels) inherit OMP_NUM_THREADS=1.
- Tests marked ``longest`` are collected first. xdist's work-stealing scheduler hands the first
  worker the head of the list, so those runs start at once and the other workers share the rest
  around them, instead of one worker finishing a full-budget run alone at the end.
"""

import os

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("longest") is None)  # stable: order kept otherwise
