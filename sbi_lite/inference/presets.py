"""Named sets of defaults for ``infer``: "default" (chosen by measurement, benchmarks/results/
ng_accuracy.md) and "paper" (Durkan, Murray & Papamakarios 2020, for the reproduction benchmarks).

A preset fills only the arguments the caller left as None, so any explicit choice wins.
"""

from __future__ import annotations

from typing import Any

from sbi_lite.density.ensemble import DEFAULT_MEMBER, check_member

__all__ = ["PRESETS", "TRAINING", "resolve_preset", "preset_training"]

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # SNPE-C: the paper's MAF trained by the atomic loss (K = 100) on proposals from q(θ|x0)
    "paper": {
        "snpe": {"estimator": "maf", "num_atoms": 100, "proposal": "posterior", "leakage_free": False},
        "sre": {"num_atoms": 100, "burn_in": 200, "thin": 10},
        "snl": {"estimator": "maf", "burn_in": 200, "thin": 10},
    },
    # SNPE-C: an NSF trained by maximum likelihood on the prior cut to q's highest-density region
    # (truncated sequential NPE): on Nonlinear-Gaussian observations with exact references, C2ST
    # 0.74–0.79 against 0.85–0.93 for the atomic loss, in a fifth of the training time
    # (benchmarks/results/snpe_causes.md). SRE: K = 50, half the pairs of the paper's K = 100 per step;
    # as accurate at 2e-3 (NG paired median C2ST −0.027 over six observations, two moons +0.003 over ten
    # cells) in 0.6x the CPU (benchmarks/results/sre_training.md). SNL: 50 slice-sampling sweeps burned
    # in at each later round's target, not 200 (the chains go on from the last target's draws): NG paired
    # median C2ST -0.010 over six observations, two moons +0.000 over five, at 0.87-0.90x the CPU; SRE
    # stays at 200, as 50 was no better on two moons (+0.008 over ten cells) and sampling is under 6% of
    # its CPU. SNL also keeps every 5th sweep, not every 10th: NG -0.001, two moons +0.000, at 0.87x and
    # 0.94x the CPU; the final draws' bulk ESS is about half (benchmarks/results/performance_targets.md,
    # target 5)
    "default": {
        "snpe": {"estimator": "nsf", "num_atoms": 100, "proposal": "truncated", "leakage_free": False},
        "sre": {"num_atoms": 50, "burn_in": 200, "thin": 10},
        "snl": {"estimator": "maf", "burn_in": 50, "thin": 5},
    },
}

# preset -> (method, estimator) -> the TrainConfig fields that differ from the paper's, used when
# train_config is None; only where measured, every other pair trains with the paper's settings.
# An ensemble trains as its members would: two NSFs with the paper's 100 at 5e-4 took 1.9x the CPU
# they took with the NSF's 200 at 1e-3, and were less accurate (C2ST 0.800 against 0.780,
# observation 1; snpe_causes.md row 19).
# SNPE-C's NSF: minibatches of 400 at four times the paper's learning rate. A step on 200 rows costs
# about what one on 100 does (as accurate in 0.45x the CPU: snpe_causes.md row 10), and one on 400
# 1.3x that (results/train_step.md): level with 200 at 1e-3 in 0.6x its CPU (snpe_causes.md row 27)
# SRE's classifier: four times the paper's learning rate at its minibatch of 100, gradients clipped at
# norm 5 (the paper's SRE does not clip; both arms of the measurement did). A contrastive epoch scores
# B·K pairs in each of N/B steps, the same at any batch size, so only fewer epochs make it cheaper: at
# 2e-3 its rounds stop sooner (results/sre_training.md)
TRAINING: dict[str, dict[tuple[str, str | None], dict[str, Any]]] = {
    "paper": {},
    "default": {("snpe", "nsf"): {"batch_size": 400, "learning_rate": 2e-3},
                ("sre", None): {"learning_rate": 2e-3, "clip_grad_norm": 5.0}},
}


def resolve_preset(preset: str, method: str, **given: Any) -> dict[str, Any]:
    """``given`` with every None replaced by ``preset``'s value for ``method``.

    Example:
        >>> resolve_preset("paper", "snpe", estimator="nsf", num_atoms=None, proposal=None, leakage_free=None)
        {'estimator': 'nsf', 'num_atoms': 100, 'proposal': 'posterior', 'leakage_free': False}
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got preset={preset!r}")
    values = PRESETS[preset][method]
    return {k: values.get(k) if v is None else v for k, v in given.items()}


def preset_training(preset: str, method: str, estimator: str | None,
                    estimator_kwargs: dict | None = None) -> dict[str, Any]:
    """The TrainConfig fields ``preset`` sets for ``method`` with ``estimator`` (None for SRE); an
    ensemble is looked up by its ``estimator_kwargs["member"]``.

    Example:
        >>> preset_training("default", "snpe", "nsf"), preset_training("default", "snpe", "maf")
        ({'batch_size': 400, 'learning_rate': 0.002}, {})
        >>> preset_training("default", "sre", None), preset_training("paper", "sre", None)
        ({'learning_rate': 0.002, 'clip_grad_norm': 5.0}, {})
        >>> preset_training("default", "snpe", "ensemble", dict(member="maf"))
        {}
    """
    if preset not in TRAINING:
        raise ValueError(f"preset must be one of {sorted(TRAINING)}, got preset={preset!r}")
    if estimator == "ensemble":
        estimator = check_member((estimator_kwargs or {}).get("member", DEFAULT_MEMBER), "estimator_kwargs['member']")
    return dict(TRAINING[preset].get((method, estimator), {}))
