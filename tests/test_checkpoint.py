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


# SNL with a burn-in of its own: the chains resumed at round 1's target, never sampled yet, burn in the
# first target's 200 sweeps, as the uninterrupted run's did
@pytest.mark.parametrize("method, kw", [("snpe", {}), ("snl", {}), ("snl", dict(burn_in=5))])
def test_killed_run_resumes_where_it_stopped(method, kw, tmp_path):
    whole = run(Simulator(), tmp_path / "whole.ckpt", method=method, **kw)
    expected = whole.sample(50, seed=1)
    dying = Simulator(die_at=3)  # call 1: the probe, 2: round 1, 3: round 2 dies
    with pytest.raises(KeyboardInterrupt):
        run(dying, tmp_path / "run.ckpt", method=method, **kw)
    assert dying.rows == 1 + 100
    resumed_sim = Simulator()
    resumed = run(resumed_sim, tmp_path / "run.ckpt", method=method, **kw)
    assert resumed_sim.rows == 1 + 2 * 100  # the probe, rounds 2 and 3: round 1 is not simulated again
    assert torch.equal(resumed.sample(50, seed=1), expected)
    drop = [c for c in whole.history if c.startswith("seconds")]
    assert resumed.history.drop(columns=drop).equals(whole.history.drop(columns=drop))
    again = Simulator()  # a finished run's checkpoint: nothing left to simulate
    assert torch.equal(run(again, tmp_path / "run.ckpt", method=method, **kw).sample(50, seed=1), expected)
    assert again.rows == 1


def test_a_changed_configuration_is_refused(tmp_path):
    run(Simulator(), tmp_path / "run.ckpt", rounds=1)
    with pytest.raises(ValueError, match=r"changed: simulations_per_round: '100' -> '120'"):
        run(Simulator(), tmp_path / "run.ckpt", rounds=1, simulations_per_round=120)
    with pytest.raises(ValueError, match=r"changed: seed: '3' -> '4'"):
        run(Simulator(), tmp_path / "run.ckpt", rounds=1, seed=4)


def test_a_run_written_under_another_default_truncation_tail_is_refused(tmp_path, monkeypatch):
    from sbi_lite.inference import checkpoint, truncation

    path = tmp_path / "run.ckpt"
    with monkeypatch.context() as m:  # the default before benchmarks/results/snpe_causes.md row 17
        m.setitem(truncation.DEFAULT_TAIL, "highest_density", 1e-3)
        run(Simulator(), path, rounds=1, proposal="truncated")
    with pytest.raises(ValueError, match=r"changed: truncation_tail: '0.001' -> '0.01'\."):
        run(Simulator(), path, rounds=1, proposal="truncated")
    run(Simulator(), path, rounds=1, proposal="truncated", truncation_tail=1e-3)  # the tail it ran with resumes
    state = checkpoint.read_checkpoint(path)  # as written before the tail in effect was recorded
    del state["fingerprint"]["truncation_tail"]
    checkpoint.write_checkpoint(path, {k: v for k, v in state.items() if k != "format"})
    with pytest.raises(ValueError, match=r"changed: truncation_tail: not recorded -> '0.01'\..* pass truncation_tail="):
        run(Simulator(), path, rounds=1, proposal="truncated")
    run(Simulator(), path, rounds=1, proposal="truncated", truncation_tail=1e-3)  # the caller vouches for its tail


def _finished_resumes(path, **kw) -> bool:
    """True when the finished run at ``path`` resumes under ``kw`` (nothing but the probe is simulated)."""
    sim = Simulator()
    run(sim, path, rounds=1, method="sre", **kw)
    return sim.rows == 1


@pytest.fixture
def short_presets(monkeypatch):
    """SRE's training under both presets, capped at 3 epochs so that a run takes a second."""
    from sbi_lite.inference import presets

    monkeypatch.setitem(presets.TRAINING["paper"], ("sre", None), {"max_epochs": 3})
    monkeypatch.setitem(presets.TRAINING["default"], ("sre", None), {"max_epochs": 3, "learning_rate": 2e-3})


RESOLVED = TrainConfig(max_epochs=3, clip_grad_norm=None)  # SRE's training under short_presets' paper preset


def test_a_run_is_refused_only_where_its_resolved_training_changed(tmp_path, short_presets):
    path = tmp_path / "run.ckpt"
    run(Simulator(), path, rounds=1, method="sre", train_config=None, preset="paper")
    with pytest.raises(ValueError, match=r"changed: training.learning_rate: '0.0005' -> '0.002'\. .*"
                                         r"train_config=TrainConfig\(max_epochs=3, clip_grad_norm=None\); passing that resumes it"):
        run(Simulator(), path, rounds=1, method="sre", train_config=None)
    # the same training however it is asked for: the preset it ran under, or the TrainConfig it resolved to
    assert _finished_resumes(path, train_config=None, preset="paper")
    assert _finished_resumes(path, train_config=RESOLVED)


def test_a_run_under_a_changed_preset_default_names_the_argument_that_resumes_it(tmp_path, short_presets,
                                                                                 monkeypatch):
    from sbi_lite.inference import presets

    path = tmp_path / "run.ckpt"
    monkeypatch.setitem(presets.PRESETS["default"], "sre", {"num_atoms": 10})
    run(Simulator(), path, rounds=1, method="sre", num_atoms=None, train_config=None)
    monkeypatch.setitem(presets.PRESETS["default"], "sre", {"num_atoms": 5})  # the default changes
    with pytest.raises(ValueError, match=r"changed: num_atoms: '10' -> '5'\. .*which had num_atoms=10; "
                                         r"passing that resumes it"):
        run(Simulator(), path, rounds=1, method="sre", num_atoms=None, train_config=None)
    assert _finished_resumes(path, num_atoms=10, train_config=None)


def test_a_checkpoint_that_recorded_where_its_training_came_from_resumes_by_what_it_resolved_to(tmp_path, short_presets):
    from sbi_lite.inference import checkpoint

    path = tmp_path / "run.ckpt"
    fresh = run(Simulator(), path, rounds=1, method="sre", train_config=None, preset="paper")
    state = checkpoint.read_checkpoint(path)  # as written before 2026-12-02, under the paper's training
    fingerprint = {k: v for k, v in state["fingerprint"].items() if not k.startswith("training.")}
    for train, defaults in [("None", "{'max_epochs': 3}"), (repr(RESOLVED), "{}")]:  # by the preset; by the caller
        state["fingerprint"] = {**fingerprint, "train": train, "train_defaults": defaults}
        checkpoint.write_checkpoint(path, {k: v for k, v in state.items() if k != "format"})
        with pytest.raises(ValueError, match=r"changed: training.learning_rate: '0.0005' -> '0.002'\."):
            run(Simulator(), path, rounds=1, method="sre", train_config=None)
        assert _finished_resumes(path, train_config=None, preset="paper")
        assert _finished_resumes(path, train_config=RESOLVED)
    # its history rows did not name the training either: the resumed history does
    state["rows"] = [{k: v for k, v in row.items() if k != "training"} for row in state["rows"]]
    checkpoint.write_checkpoint(path, {k: v for k, v in state.items() if k != "format"})
    resumed = run(Simulator(), path, rounds=1, method="sre", train_config=RESOLVED)
    assert resumed.history["training"].tolist() == [RESOLVED.brief()]
    assert resumed.history.columns.tolist() == fresh.history.columns.tolist()


def test_old_and_partial_fingerprints_are_read_as_the_training_they_resolved_to():
    import numpy as np

    from sbi_lite.inference.checkpoint import training_fingerprint, upgrade_training

    current = training_fingerprint(RESOLVED)
    # before presets existed a fingerprint had train, and no train_defaults
    assert upgrade_training({"seed": "3", "train": "None"}, RESOLVED) == {"seed": "3", **current}
    # a field added to TrainConfig since the checkpoint was written ran at its default
    assert upgrade_training({k: v for k, v in current.items() if k != "training.lr_decays"}, RESOLVED) == current
    unreadable = {"train": "TrainConfig(no_such_field=1)", "train_defaults": "{}"}
    assert upgrade_training(unreadable, RESOLVED) == unreadable  # left for the refusal to name
    # equal settings print alike, however the numbers were given
    given = TrainConfig(learning_rate=np.float64(5e-4), batch_size=np.int64(100), max_epochs=3.0, clip_grad_norm=None)
    assert training_fingerprint(given) == current


KILLABLE = r"""
import hashlib, sys, time
import torch
from sbi_lite import BoxUniform, TrainConfig, infer

checkpoint, log = sys.argv[1], sys.argv[2]

def simulator(theta, rng):
    with open(log, "a") as f:
        f.write(f"{len(theta)}\n")
    time.sleep(0.5)  # a slow simulator: there is time to be killed between chunks
    return theta + 0.5 * rng.standard_normal(theta.shape)

prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
post = infer(simulator, prior, [0.5, -0.5], rounds=3, simulations_per_round=1200, num_atoms=10, seed=3,
             progress=False, train_config=TrainConfig(max_epochs=3), checkpoint=checkpoint)
print(hashlib.sha256(post.sample(50, seed=1).numpy().tobytes()).hexdigest())
"""


def _start(tmp_path, name):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", KILLABLE, str(tmp_path / f"{name}.ckpt"), str(tmp_path / f"{name}.log")],
                            stdout=subprocess.PIPE, text=True)


def _rows(path) -> list[int]:
    return [int(v) for v in path.read_text().split()] if path.exists() else []


def test_sigkill_mid_round_then_resume_loses_and_repeats_nothing(tmp_path):
    """Killed (SIGKILL) in the middle of round 2 — after some of its chunks of 500 finished — and
    run again: the store holds exactly 3 × 1,200 distinct pairs, only the chunk in flight at the
    kill was simulated twice, and the posterior is the uninterrupted run's, bit for bit."""
    import time

    reference = _start(tmp_path, "whole")
    expected = reference.communicate(timeout=600)[0].strip()
    victim = _start(tmp_path, "run")
    deadline = time.time() + 600
    while time.time() < deadline:  # wait for a mid-round checkpoint of round 2 with a finished chunk
        time.sleep(0.2)
        path = tmp_path / "run.ckpt"
        state = torch.load(path, weights_only=True) if path.exists() else {}
        if state.get("round") == 1 and state.get("partial") and state["partial"]["chunks"]:
            break
    victim.kill()
    victim.wait()
    assert victim.returncode == -9
    done_chunks = len(state["partial"]["chunks"])
    resumed = _start(tmp_path, "run")
    assert resumed.communicate(timeout=600)[0].strip() == expected
    final = torch.load(tmp_path / "run.ckpt", weights_only=True)
    theta = final["store"]["theta"]
    assert len(theta) == 3 * 1200 and len(torch.unique(theta, dim=0)) == 3 * 1200
    simulated = sum(_rows(tmp_path / "run.log"))
    in_flight = simulated - 2 - 3 * 1200  # two probes (one per process), then the extra work
    assert 0 <= in_flight <= 500 and done_chunks >= 1
    assert sum(_rows(tmp_path / "whole.log")) == 1 + 3 * 1200


def test_a_run_that_did_not_record_its_burn_in_names_the_burn_in_that_resumes_it(tmp_path):
    path = tmp_path / "run.ckpt"
    run(Simulator(), path, rounds=1, method="snl", burn_in=200)  # the paper's 200 enters no fingerprint
    with pytest.raises(ValueError, match=r"burn_in: not recorded -> '50'\..*pass burn_in=200 to resume it"):
        run(Simulator(), path, rounds=1, method="snl", burn_in=50)
    again = Simulator()
    run(again, path, rounds=1, method="snl", burn_in=200)
    assert again.rows == 1  # the probe: the finished run resumed
