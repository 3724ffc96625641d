"""``load``: a saved posterior back, with its network rebuilt from the file's recipe.

The format (written by ``Posterior.save``) is described in ``sbi_lite.posterior.fileformat``.
"""

from __future__ import annotations

import os

import torch

from sbi_lite.inference.methods import METHODS, build_network
from sbi_lite.posterior import DirectPosterior, MCMCPosterior, Posterior
from sbi_lite.posterior.fileformat import decode_history, decode_prior, read
from sbi_lite.devices import check_device
from sbi_lite.samplers import SliceSampler

__all__ = ["load"]


def load(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> Posterior:
    """Read a posterior written by ``posterior.save(path)``, its network on ``device``.

    The file is read with ``torch.load(weights_only=True)``: nothing is unpickled. The network is
    rebuilt from the recorded method, estimator, keyword arguments and dimensions, then takes the
    saved weights; the prior, x0, history, sampler settings and the sampler's snapshot come back
    too, so ``log_prob`` and ``sample(n, seed=s)`` give what the saved posterior gave (on
    another device than the saved one's: up to floating-point differences). Files are
    device-free: a posterior saved from a GPU loads on a CPU-only machine.

    Raises:
        ValueError: the file is not a posterior file, has another format version, or holds
            pickled objects; ``device`` is not a device this machine has.

    Example:
        >>> import tempfile, torch
        >>> from sbi_lite import BoxUniform, TrainConfig, infer
        >>> post = infer(lambda t, rng: t + 0.1 * rng.standard_normal(t.shape), BoxUniform([-1.0], [1.0]), [0.2],
        ...              rounds=1, simulations_per_round=50, seed=0, progress=False,
        ...              estimator_kwargs=dict(hidden=8, num_transforms=1), train_config=TrainConfig(max_epochs=2))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     post.save(f"{d}/post.pt")
        ...     same = load(f"{d}/post.pt")
        >>> torch.equal(same.sample(4, seed=0), post.sample(4, seed=0))
        True
    """
    device = check_device("device", device)
    config, payload = read(path)
    spec = config["spec"]
    net = build_network(spec, device=device)
    net.load_state_dict(payload["network"])
    net.eval()
    prior, x0 = decode_prior(payload["prior"]), payload["x0"]
    history, settings, state = decode_history(payload["history"]), config["settings"], payload["state"]
    if config["posterior"] == "direct":
        posterior = DirectPosterior(net, prior, x0, history, spec=spec, **settings)
        posterior._restore(state)
        return posterior
    potential = METHODS[spec["method"]].potential(net, prior, x0)
    sampler = SliceSampler.from_state(potential, state["sampler"])
    return MCMCPosterior(potential, prior, x0, sampler, history, spec=spec, **settings)
