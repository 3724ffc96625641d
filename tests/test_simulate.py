import numpy as np
import pytest
import torch

from sbi_lite import simulate
from simulators import get_task


def _raises_on_negative(theta, rng):
    if (theta[:, 0] < 0).any():
        raise ValueError("negative rate")
    return theta + rng.normal(size=theta.shape)


def test_identical_for_any_n_jobs():
    task = get_task("lotka_volterra")
    theta = task.prior.sample((120,), generator=torch.Generator().manual_seed(0))
    a = simulate(task.simulator, theta, seed=11, n_jobs=1, chunk_size=30)
    b = simulate(task.simulator, theta, seed=11, n_jobs=2, chunk_size=30)
    assert torch.equal(a.failed, b.failed)
    assert torch.allclose(a.x.nan_to_num(123.0), b.x.nan_to_num(123.0), rtol=0, atol=0)
    c = simulate(task.simulator, theta, seed=12, chunk_size=30)
    assert not torch.allclose(a.x.nan_to_num(0.0), c.x.nan_to_num(0.0))
    assert a.n_failed == int(torch.isnan(a.x[:, 0]).sum()) and a.errors == {"non-finite output": a.n_failed}


def test_raising_simulator_marks_rows_failed_and_keeps_pairing():
    theta = np.linspace(-1, 1, 40)[:, None].repeat(2, 1)
    sims = simulate(_raises_on_negative, theta, seed=0, chunk_size=16)
    negative = torch.as_tensor(theta[:, 0] < 0)
    assert torch.equal(sims.failed, negative)
    assert sims.errors == {"ValueError": int(negative.sum())}
    assert sims.messages["ValueError"] == "negative rate"
    ok_theta, ok_x = sims.valid()
    assert len(ok_theta) == 20 and torch.allclose(ok_x, ok_theta, atol=5.0)
    # row-wise salvage is itself deterministic
    again = simulate(_raises_on_negative, theta, seed=0, chunk_size=16, n_jobs=2)
    assert torch.equal(sims.x.nan_to_num(0.0), again.x.nan_to_num(0.0))


def test_plain_callables_torch_and_single_theta():
    theta = torch.zeros(10, 3)
    def noisy(t):  # global-RNG user simulator, torch in and out
        return t + torch.randn_like(t)
    a, b = simulate(noisy, theta, seed=5), simulate(noisy, theta, seed=5)
    assert torch.equal(a.x, b.x) and a.x.std() > 0.5

    def one(t):  # one θ at a time, numpy
        return np.array([t.sum(), np.random.normal()])
    c = simulate(one, np.ones((7, 3)), seed=1, vectorized=False)
    assert c.x.shape == (7, 2) and torch.allclose(c.x[:, 0], torch.full((7,), 3.0))


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"theta must have shape \(n, d\)"):
        simulate(lambda t, rng: t, np.zeros(3))
    with pytest.raises(ValueError, match=r"returned shape \(2, 2\) for a batch of 4"):
        simulate(lambda t, rng: t[:2], np.zeros((4, 2)))
    with pytest.raises(TypeError, match="callable"):
        simulate("sim", np.zeros((4, 2)))
    with pytest.raises(RuntimeError, match="all 3 simulations raised"):
        simulate(lambda t: 1 / 0, np.zeros((3, 1)))
