"""Classifier two-sample test: 0.5 means the two sample sets are indistinguishable."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from sbi_lite.seeding import Seed, spawn_int

__all__ = ["c2st"]


def c2st(a: Tensor, b: Tensor, *, folds: int = 5, seed: Seed = 0) -> float:
    """Cross-validated accuracy of an MLP telling samples a (n, d) from b (m, d), z-scored on a.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> round(c2st(torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)), 1)
        0.5
    """
    from sklearn.model_selection import cross_val_score
    from sklearn.neural_network import MLPClassifier

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mean, std = a.mean(0), a.std(0) + 1e-12
    data = (np.concatenate([a, b]) - mean) / std
    labels = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    d = a.shape[1]
    clf = MLPClassifier(hidden_layer_sizes=(10 * d, 10 * d), max_iter=1000, solver="adam",
                        random_state=spawn_int(seed) % 2**31, early_stopping=True)
    return float(np.mean(cross_val_score(clf, data, labels, cv=folds, scoring="accuracy")))
