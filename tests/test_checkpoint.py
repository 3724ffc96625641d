"""A run that dies loses nothing: resumed from its checkpoint it re-simulates nothing already
stored and ends exactly where the uninterrupted run ends."""

import pytest
import torch

from sbi_lite import BoxUniform, TrainConfig, infer

PRIOR = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))


class Simulator:
    """Gaussian noise around θ; counts rows; can die (as a killed process would) at call ``die_at``."""

    def __init__(self, die_at=None):
        self.rows, self.calls, self.die_at = 0, 0, die_at

    def __call__(self, theta, rng):
        self.calls += 1
        if self.calls == self.die_at:
            raise KeyboardInterrupt("killed")
        self.rows += len(theta)
        return theta + 0.5 * rng.standard_normal(theta.shape)


def run(sim, path, **kw):
    args = dict(rounds=3, simulations_per_round=100, num_atoms=10, seed=3, progress=False, chains=4,
                train_config=TrainConfig(max_epochs=3), checkpoint=path)
    return infer(sim, PRIOR, [0.5, -0.5], **{**args, **kw})


@pytest.mark.parametrize("method", ["snpe", "snl"])
def test_killed_run_resumes_where_it_stopped(method, tmp_path):
    whole = run(Simulator(), tmp_path / "whole.ckpt", method=method)
    expected = whole.sample(50, seed=1)
    dying = Simulator(die_at=3)  # call 1: the probe, 2: round 1, 3: round 2 dies
    with pytest.raises(KeyboardInterrupt):
        run(dying, tmp_path / "run.ckpt", method=method)
    assert dying.rows == 1 + 100
    resumed_sim = Simulator()
    resumed = run(resumed_sim, tmp_path / "run.ckpt", method=method)
    assert resumed_sim.rows == 1 + 2 * 100  # the probe, rounds 2 and 3: round 1 is not simulated again
    assert torch.equal(resumed.sample(50, seed=1), expected)
    drop = [c for c in whole.history if c.startswith("seconds")]
    assert resumed.history.drop(columns=drop).equals(whole.history.drop(columns=drop))
    again = Simulator()  # a finished run's checkpoint: nothing left to simulate
    assert torch.equal(run(again, tmp_path / "run.ckpt", method=method).sample(50, seed=1), expected)
    assert again.rows == 1


def test_a_changed_configuration_is_refused(tmp_path):
    run(Simulator(), tmp_path / "run.ckpt", rounds=1)
    with pytest.raises(ValueError, match=r"changed: simulations_per_round: '100' -> '120'"):
        run(Simulator(), tmp_path / "run.ckpt", rounds=1, simulations_per_round=120)
    with pytest.raises(ValueError, match=r"changed: seed: '3' -> '4'"):
        run(Simulator(), tmp_path / "run.ckpt", rounds=1, seed=4)
