"""The posterior file format: one ``torch.save`` of a dict that ``torch.load(weights_only=True)``
reads, so loading never unpickles code.

Keys (format version 1):

- ``format``: ``"sbi_lite.posterior"``; ``format_version``: an int, bumped on any incompatible
  change (a file of another version is refused); ``library_version``: the writing sbi_lite.
- ``config``: a JSON string: ``{"posterior": "direct" | "mcmc", "spec": {method, estimator,
  estimator_kwargs, input_dim, context_dim}, "settings": {sampler settings}}``.
- ``network``: the estimator's (or classifier's) ``state_dict``, on the CPU (files are device-free).
- ``prior``: ``{"type": ..., parameters as tensors}`` (``encode_prior``).
- ``x0``: tensor (c,). ``history``: ``{"columns", "dtypes", "data"}`` (``encode_history``).
- ``state``: tensors and numbers the posterior needs to give the same draws for the same seed
  (the slice sampler's snapshot, the normalising mass).
"""

from __future__ import annotations

import json
import os
import pickle
from importlib import metadata
from typing import Any

import pandas as pd
import torch
from torch import distributions as D

from sbi_lite.priors import AffineBoxUniform, BoxUniform, Prior, TorchPrior

__all__ = ["FORMAT", "FORMAT_VERSION", "encode_prior", "decode_prior", "encode_history", "decode_history",
           "write", "read"]

FORMAT = "sbi_lite.posterior"
FORMAT_VERSION = 1

# torch distributions saved by their tensor parameters (constructor argument names)
_DISTRIBUTIONS = {
    "Normal": ("loc", "scale"), "Uniform": ("low", "high"), "LogNormal": ("loc", "scale"),
    "Laplace": ("loc", "scale"), "Beta": ("concentration1", "concentration0"),
    "Gamma": ("concentration", "rate"), "Exponential": ("rate",), "MultivariateNormal": ("loc", "scale_tril"),
}


def _library_version() -> str:
    try:
        return metadata.version("sbi-lite")
    except metadata.PackageNotFoundError:
        return "unknown"


def _encode_distribution(dist: D.Distribution) -> dict[str, Any]:
    name = type(dist).__name__
    if type(dist) is D.Independent:
        return {"type": name, "ndims": dist.reinterpreted_batch_ndims, "base": _encode_distribution(dist.base_dist)}
    if name in _DISTRIBUTIONS and type(dist) is getattr(D, name):
        return {"type": name, **{k: getattr(dist, k).detach().clone() for k in _DISTRIBUTIONS[name]}}
    raise ValueError(f"cannot save a prior wrapping {type(dist).__module__}.{type(dist).__qualname__}: "
                     f"only {sorted(_DISTRIBUTIONS) + ['Independent']} are saved (by their parameters)")


def _decode_distribution(data: dict[str, Any]) -> D.Distribution:
    if data["type"] == "Independent":
        return D.Independent(_decode_distribution(data["base"]), int(data["ndims"]))
    return getattr(D, data["type"])(**{k: data[k] for k in _DISTRIBUTIONS[data["type"]]})


def encode_prior(prior: Prior) -> dict[str, Any]:
    """A prior as ``{"type": ..., tensors}``; raises ValueError for a prior it cannot describe.

    Example:
        >>> decode_prior(encode_prior(BoxUniform(torch.zeros(2), torch.ones(2))))
        BoxUniform(low=[0.0, 0.0], high=[1.0, 1.0])
    """
    if type(prior) is BoxUniform:
        return {"type": "BoxUniform", "low": prior.low.clone(), "high": prior.high.clone()}
    if type(prior) is AffineBoxUniform:
        return {"type": "AffineBoxUniform", "low": prior.box.low.clone(), "high": prior.box.high.clone(),
                "matrix": prior.matrix.clone()}
    if type(prior) is TorchPrior:
        return {"type": "TorchPrior", "distribution": _encode_distribution(prior.distribution)}
    raise ValueError(f"cannot save a prior of type {type(prior).__qualname__}: only BoxUniform, AffineBoxUniform "
                     "and TorchPrior (of common torch distributions) are saved")


def decode_prior(data: dict[str, Any]) -> Prior:
    """Inverse of ``encode_prior``."""
    if data["type"] == "BoxUniform":
        return BoxUniform(data["low"], data["high"])
    if data["type"] == "AffineBoxUniform":
        return AffineBoxUniform(data["low"], data["high"], data["matrix"])
    if data["type"] == "TorchPrior":
        return TorchPrior(_decode_distribution(data["distribution"]))
    raise ValueError(f"unknown prior type {data['type']!r} in the file")


def encode_history(history: pd.DataFrame) -> dict[str, Any]:
    """A DataFrame (default index) as plain lists of Python scalars and its dtypes."""
    return {"columns": [str(c) for c in history.columns], "dtypes": [str(t) for t in history.dtypes],
            "data": [history[c].tolist() for c in history.columns]}


def decode_history(data: dict[str, Any]) -> pd.DataFrame:
    """Inverse of ``encode_history``."""
    return pd.DataFrame({c: pd.Series(v, dtype=t) for c, t, v in zip(data["columns"], data["dtypes"], data["data"])})


def write(path: str | os.PathLike, config: dict[str, Any], network: dict, prior: Prior, x0: torch.Tensor,
          history: pd.DataFrame, state: dict[str, Any]) -> None:
    """Write one posterior file (see the module docstring)."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "library_version": _library_version(),
               "config": json.dumps(config), "network": {k: v.detach().cpu() for k, v in network.items()},
               "prior": encode_prior(prior), "x0": x0.detach().cpu().clone(), "history": encode_history(history), "state": state}
    torch.save(payload, path)


def read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, payload) of a posterior file, refusing other formats and versions."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{os.fspath(path)!r} holds pickled Python objects, which sbi_lite never writes and "
                         f"will not unpickle (torch.load(weights_only=True) refused it: {e})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not an sbi_lite posterior file (no format {FORMAT!r})")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{os.fspath(path)!r} has posterior format version {version!r} (written by sbi_lite "
                         f"{payload.get('library_version')}); this sbi_lite {_library_version()} reads format "
                         f"version {FORMAT_VERSION} only")
    return json.loads(payload["config"]), payload
