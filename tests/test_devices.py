"""Devices follow tensors and networks, never a global default.

On the CPU: every entry point gives the SAME bits when torch's global default device is "meta"
(any factory call that forgot its ``device=`` would land there and fail or return meta tensors),
and a bad ``device`` costs no simulation. Where a GPU is present: training, the three methods,
posteriors, saving/loading and the samplers run on CUDA, with results close to the CPU's.
"""

import contextlib

import numpy as np
import pytest
import torch

from sbi_lite import BoxUniform, TrainConfig, build, infer, load
from sbi_lite.losses import contrastive_loss
from sbi_lite.priors import AffineBoxUniform, TorchPrior
from sbi_lite.ratio import RatioEstimator
from sbi_lite.samplers import SliceSampler, rejection_sample
from sbi_lite.train import train

PRIOR = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))
X0 = [0.5, -0.5]
TINY = dict(rounds=2, simulations_per_round=100, num_atoms=10, seed=7, progress=False, chains=4,
            train_config=TrainConfig(max_epochs=3))
SMALL_NET = {"snpe": dict(hidden=8, num_transforms=2), "snl": dict(hidden=8, num_transforms=2),
             "sre": dict(hidden=8, num_blocks=1)}
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def simulator(theta, rng):
    return theta + 0.3 * rng.standard_normal(theta.shape)


@contextlib.contextmanager
def meta_default():
    """torch's global default device set to "meta" (restored after), as a user's
    ``torch.set_default_device`` would set it."""
    with torch.device("meta"):
        assert torch.empty(1).device.type == "meta"
        yield


def assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.device.type == "cpu" and b.device.type == "cpu"
    assert torch.isfinite(a[torch.isfinite(b)]).all()
    assert torch.equal(a, b), f"max difference {float((a - b).abs().max())}"


def gaussian_potential(theta):
    return -0.5 * theta.pow(2).sum(-1)


# ---------------------------------------------------------------------------------------- CPU


def test_train_ignores_the_global_default_device():
    """The split, the shuffling, the contrastive atoms and Adam all make their tensors where the
    module and the data are."""
    g = torch.Generator().manual_seed(0)
    theta = torch.rand(120, 2, generator=g) * 4 - 2
    x = theta + 0.3 * torch.randn(120, 2, generator=g)

    def fit():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(3)
            net = RatioEstimator(2, 2, hidden=8, num_blocks=1)
        net.fit_standardization(theta, x)
        return net

    results = []
    for context in (contextlib.nullcontext, meta_default):
        net = fit()  # built outside: where the module lives is the caller's choice, here the CPU
        with context():
            history = train(net, lambda t, c: contrastive_loss(net.log_ratio, t, c, 5), (theta, x),
                            config=TrainConfig(max_epochs=3, batch_size=20), seed=1)
        results.append((history, net.state_dict()))
    (h1, s1), (h2, s2) = results
    assert h1.train_loss == h2.train_loss and h1.validation_loss == h2.validation_loss
    for k in s1:
        assert_same(s2[k], s1[k])


def test_no_entry_point_seeds_every_device(monkeypatch):
    """``torch.manual_seed`` seeds the CPU and every CUDA device, and ``fork_rng(devices=[])``
    restores only the CPU: a CPU run that called it would move the caller's CUDA stream (seen on
    a GPU: a CPU ``train`` changed ``torch.cuda.get_rng_state()``). Seeding goes through
    ``sbi_lite.devices.seeded_rng``, which seeds only the devices it restores."""
    def refuse(*args):
        raise AssertionError("a global seed of every device")

    monkeypatch.setattr(torch, "manual_seed", refuse)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", refuse)
    post = infer(lambda t: t + 0.3 * torch.randn(t.shape), PRIOR, X0, method="sre",  # no rng: seeded globals
                 estimator_kwargs=SMALL_NET["sre"], **TINY)
    assert post.sample(4, seed=0).shape == (4, 2)
    normal = TorchPrior(torch.distributions.Normal(torch.zeros(2), torch.ones(2)))
    assert normal.sample((3,), generator=torch.Generator().manual_seed(0)).shape == (3, 2)
    assert build("maf", 2, 2, seed=0).input_dim == 2


@pytest.mark.parametrize("method", ["snpe", pytest.param("sre", marks=pytest.mark.slow),
                                    pytest.param("snl", marks=pytest.mark.slow)])
def test_infer_sample_and_log_prob_ignore_the_global_default_device(method):
    """Two rounds (round 2 proposes from round 1's posterior: rejection or slice sampling), then
    seeded draws and log-densities: bit-identical under a "meta" default device."""
    kwargs = dict(method=method, estimator_kwargs=SMALL_NET[method], **TINY)
    reference = infer(simulator, PRIOR, X0, **kwargs)
    probe = torch.tensor([[0.5, -0.5], [0.0, 0.0], [3.0, 0.0]])
    with meta_default():
        post = infer(simulator, PRIOR, X0, **kwargs)
        draws, log_prob = post.sample(32, seed=3), post.log_prob(probe)
        listed = post.log_prob([[0.5, -0.5]])
    assert_same(draws, reference.sample(32, seed=3))
    assert_same(log_prob, reference.log_prob(probe))
    assert_same(listed, reference.log_prob(probe[:1]))
    assert torch.isinf(log_prob[2]) and torch.isfinite(log_prob[:2]).all()
    drop = [c for c in reference.history if c.startswith("seconds")]
    assert post.history.drop(columns=drop).equals(reference.history.drop(columns=drop))


def test_samplers_priors_and_load_ignore_the_global_default_device(tmp_path):
    post = infer(simulator, PRIOR, X0, **{**TINY, "rounds": 1})
    post.save(tmp_path / "post.pt")
    affine = AffineBoxUniform(torch.zeros(2), torch.ones(2), torch.tensor([[1.0, 0.0], [-1.0, 1.0]]))
    normal = TorchPrior(torch.distributions.Normal(torch.zeros(2), torch.ones(2)))

    def run():
        g = torch.Generator().manual_seed(5)
        out = [prior.sample((20,), generator=g) for prior in (PRIOR, affine, normal)]
        out += [prior.log_prob(out[0]) for prior in (PRIOR, affine, normal)]
        sampler = SliceSampler(gaussian_potential, torch.zeros(4, 2, device="cpu"), seed=0, tune=5, burn_in=5)
        out.append(sampler.sample(16, thin=2))
        out.append(sampler.copy().sample(8))
        out.append(rejection_sample(lambda m: PRIOR.sample((m,), generator=g), lambda t: t[:, 0] > 0, 50)[0])
        loaded = load(tmp_path / "post.pt")
        out += [loaded.sample(16, seed=1), loaded.log_prob(torch.zeros(3, 2, device="cpu")), post.acceptance_rate(2000, seed=2)]
        mcmc = type(post)(post.estimator, PRIOR, post.x0, sample_with="mcmc", chains=4)
        out.append(mcmc.sample(8, seed=4))
        return out

    reference = run()
    with meta_default():
        result = run()
    for got, want in zip(result, reference):
        if isinstance(want, float):
            assert got == want
        else:
            assert_same(got, want)


def test_priors_answer_on_theta_device():
    """Box and affine-box priors compare θ with their CPU parameters on θ's device (shown on "meta",
    which needs no GPU: a CPU-only computation would give CPU tensors)."""
    theta = torch.zeros(3, 2, device="meta")
    affine = AffineBoxUniform(torch.zeros(2), torch.ones(2), torch.eye(2))
    for prior in (PRIOR, affine):
        assert prior.log_prob(theta).device.type == "meta"
        assert prior.support_contains(theta).device.type == "meta"
    assert PRIOR.low.device.type == "cpu"


@pytest.mark.parametrize("device, error, match", [
    ("tpu", ValueError, r"device='tpu' is not a device name"),
    ("meta", ValueError, r"device must be 'cpu', 'cuda\[:index\]' or 'mps', got 'meta'"),
    (0, TypeError, r"device must be a device name such as 'cpu' or 'cuda', got 0 \(int\)"),
    pytest.param("cuda", ValueError, r"device='cuda', but torch.cuda.is_available\(\) is False",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
])
def test_a_bad_device_costs_no_simulation(device, error, match):
    calls = []

    def counting(theta, rng):
        calls.append(len(theta))
        return simulator(theta, rng)

    with pytest.raises(error, match=match):
        infer(counting, PRIOR, X0, device=device, **TINY)
    assert calls == []


def test_a_checkpoint_remembers_its_device(tmp_path):
    infer(simulator, PRIOR, X0, checkpoint=tmp_path / "run.pt", **{**TINY, "rounds": 1})
    state = torch.load(tmp_path / "run.pt", weights_only=True)
    assert state["fingerprint"]["device"] == "'cpu'"


# --------------------------------------------------------------------------------------- CUDA


def _network(post):
    return post.estimator if hasattr(post, "estimator") else post.potential.net


@cuda
def test_train_on_cuda_with_cpu_data():
    g = torch.Generator().manual_seed(0)
    theta = torch.rand(500, 2, generator=g) * 4 - 2
    x = theta + 0.3 * torch.randn(500, 2, generator=g)
    losses = {}
    for device in ("cpu", "cuda"):
        q = build("maf", 2, 2, seed=0, hidden=16, num_transforms=2).to(device)
        q.fit_standardization(theta, x)  # CPU data into CUDA buffers
        before = torch.cuda.get_rng_state()
        history = train(q, q.loss, (theta, x), config=TrainConfig(max_epochs=20, learning_rate=3e-3), seed=1)
        assert torch.equal(before, torch.cuda.get_rng_state())  # the caller's CUDA RNG is left alone
        assert all(p.device.type == torch.device(device).type for p in q.parameters())
        losses[device] = history.best_validation_loss
    # same split, same minibatches, same initial weights: only float kernels differ
    assert abs(losses["cuda"] - losses["cpu"]) < 0.1, losses


@cuda
@pytest.mark.parametrize("method", ["snpe", "sre", "snl"])
def test_infer_on_cuda(method):
    post = infer(simulator, PRIOR, X0, method=method, device="cuda", **TINY)
    assert all(p.device.type == "cuda" for p in _network(post).parameters())
    draws = post.sample(64, seed=0)
    assert draws.device.type == "cpu" and draws.shape == (64, 2) and torch.isfinite(draws).all()
    assert PRIOR.support_contains(draws).all()
    assert torch.equal(draws, post.sample(64, seed=0))
    assert len(post.history) == 2
    theta = torch.tensor([[0.5, -0.5], [3.0, 0.0]])
    on_cpu, on_gpu = post.log_prob(theta), post.log_prob(theta.cuda())
    assert on_cpu.device.type == "cpu" and on_gpu.device.type == "cuda"
    assert torch.isfinite(on_cpu[0]) and torch.isinf(on_cpu[1])
    torch.testing.assert_close(on_gpu.cpu(), on_cpu)


@cuda
@pytest.mark.parametrize("method", ["snpe", "snl"])
def test_cuda_posterior_is_close_to_the_cpu_one(method):
    """Same seed: the same simulations for round 1, the same initial weights; the posteriors
    agree statistically (not bitwise: float kernels differ), near the exact N(x0, 0.3² I)."""
    kwargs = dict(method=method, rounds=1, simulations_per_round=1000, seed=0, progress=False, chains=20,
                  train_config=TrainConfig(max_epochs=30, learning_rate=3e-3))
    draws = {d: infer(simulator, PRIOR, X0, device=d, **kwargs).sample(2000, seed=1) for d in ("cpu", "cuda")}
    for d in draws.values():
        assert (d.mean(0) - torch.tensor(X0)).abs().max() < 0.15
        assert ((d.std(0) - 0.3).abs() < 0.15).all()
    assert (draws["cuda"].mean(0) - draws["cpu"].mean(0)).abs().max() < 0.1


@cuda
def test_save_and_load_across_devices(tmp_path):
    post = infer(simulator, PRIOR, X0, method="snpe", device="cuda", **TINY)
    post.save(tmp_path / "post.pt")
    payload = torch.load(tmp_path / "post.pt", weights_only=True)
    assert all(v.device.type == "cpu" for v in payload["network"].values())  # files are device-free
    theta = torch.tensor([[0.5, -0.5], [0.0, 0.1]])
    on_cpu, on_gpu = load(tmp_path / "post.pt"), load(tmp_path / "post.pt", device="cuda")
    assert all(p.device.type == "cpu" for p in on_cpu.estimator.parameters())
    assert all(p.device.type == "cuda" for p in on_gpu.estimator.parameters())
    torch.testing.assert_close(on_gpu.log_prob(theta), post.log_prob(theta))
    torch.testing.assert_close(on_cpu.log_prob(theta), post.log_prob(theta), atol=1e-3, rtol=1e-3)
    assert torch.equal(on_gpu.sample(32, seed=2), post.sample(32, seed=2))
    assert on_cpu.sample(32, seed=2).device.type == "cpu"
    mcmc = infer(simulator, PRIOR, X0, method="snl", device="cuda", **TINY)
    mcmc.save(tmp_path / "snl.pt")
    back = load(tmp_path / "snl.pt", device="cuda")
    assert torch.equal(back.sample(16, seed=0), mcmc.sample(16, seed=0))


@cuda
def test_slice_sampler_on_cuda():
    init = torch.zeros(50, 2, device="cuda")
    sampler = SliceSampler(gaussian_potential, init, seed=0, tune=20, burn_in=50)
    draws = sampler.sample(5000, thin=2)
    assert draws.device.type == "cuda" and sampler.chains.device.type == "cuda"
    assert (draws.mean(0).abs() < 0.1).all() and ((draws.std(0) - 1).abs() < 0.1).all()
    cpu = SliceSampler(gaussian_potential, init.cpu(), seed=0, tune=20, burn_in=50).sample(5000, thin=2)
    assert (draws.cpu().mean(0) - cpu.mean(0)).abs().max() < 0.15
    copy = SliceSampler.from_state(gaussian_potential, sampler.state())
    assert torch.equal(copy.sample(100), sampler.sample(100))  # the CPU stream drives CUDA chains
    gen = torch.Generator(device="cuda").manual_seed(0)  # a CUDA generator works too, and survives a state
    on_gpu_stream = SliceSampler(gaussian_potential, init, seed=gen, tune=5, burn_in=5)
    again = SliceSampler.from_state(gaussian_potential, on_gpu_stream.state())
    assert torch.equal(again.sample(40), on_gpu_stream.sample(40))


@cuda
def test_priors_and_rejection_on_cuda():
    theta = torch.tensor([[0.0, 0.0], [3.0, 0.0]], device="cuda")
    normal = TorchPrior(torch.distributions.Normal(torch.zeros(2), torch.ones(2)))
    affine = AffineBoxUniform(torch.zeros(2) - 2, torch.ones(2) * 2, torch.eye(2))
    for prior in (PRIOR, affine, normal):
        lp = prior.log_prob(theta)
        assert lp.device.type == "cuda"
        torch.testing.assert_close(lp.cpu(), prior.log_prob(theta.cpu()))
    assert PRIOR.sample((4,), generator=torch.Generator(device="cuda").manual_seed(0)).device.type == "cuda"
    draws, rate = rejection_sample(lambda m: torch.randn(m, 2, device="cuda"), PRIOR.support_contains, 200)
    assert draws.device.type == "cuda" and 0.8 < rate <= 1 and PRIOR.support_contains(draws).all()


@cuda
def test_resuming_a_cuda_run_on_the_cpu_is_refused_by_name(tmp_path):
    infer(simulator, PRIOR, X0, device="cuda", checkpoint=tmp_path / "run.pt", **TINY)
    with pytest.raises(ValueError, match=r"device: \"'cuda'\" -> \"'cpu'\""):
        infer(simulator, PRIOR, X0, device="cpu", checkpoint=tmp_path / "run.pt", **TINY)
    resumed = infer(simulator, PRIOR, X0, device="cuda", checkpoint=tmp_path / "run.pt", **TINY)
    assert len(resumed.history) == 2
