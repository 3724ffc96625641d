"""The contrastive loss's fast path: scoring θ (B, K, d) against x (B, 1, c), each x's share of
the network computed once, gives the per-pair scores (and gradients) of the plain B·K-row call."""

import pytest
import torch
import torch.nn.functional as F

from sbi_lite import BoxUniform
from sbi_lite.devices import seeded_rng
from sbi_lite.inference.methods import METHODS
from sbi_lite.losses import atom_indices, contrastive_loss
from sbi_lite.nn import MADE, ResidualNet
from sbi_lite.nn.fast import fast_tanh, tall_linear
from sbi_lite.ratio import RatioEstimator
from test_contract import inputs_for, make

B, K, D, C = 7, 5, 4, 3
SMALL = dict(hidden=16, num_transforms=2)
FLOWS = [
    ("maf", SMALL), ("maf", dict(SMALL, batch_norm=True)), ("nsf", SMALL), ("nsf_ar", SMALL),
    ("nsf_ar", dict(SMALL, activation="tanh")), ("nsf", dict(SMALL, bounds=(-2 * torch.ones(1), 3 * torch.ones(1)))),
    ("ensemble", dict(members=2, **SMALL)),
]
IDS = ["maf", "maf_batchnorm", "nsf", "nsf_ar", "nsf_ar_tanh", "nsf_box", "ensemble"]


def pairs(d=D, c=C, seed=0, opts=None):
    """θ (B, d), x (B, c), the atoms (B, K), and the per-pair inputs of the plain path."""
    g = torch.Generator().manual_seed(seed)
    theta = inputs_for(opts or {}, B, d, seed=seed + 1)
    x = torch.randn(B, c, generator=g)
    idx = atom_indices(B, K, torch.Generator().manual_seed(seed + 2))
    return theta, x, idx, theta[idx.reshape(-1)], x.repeat_interleave(K, 0)


def grads(module, value):
    module.zero_grad(set_to_none=True)
    value.sum().backward()
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in module.parameters()]


def assert_same_grads(a, b, tol=1e-5):
    scale = max(float(g.abs().max()) for g in a)
    assert scale > 0
    worst = max(float((ga - gb).abs().max()) for ga, gb in zip(a, b)) / scale
    assert worst < tol, worst


def test_tall_linear_and_fast_tanh_match_torch():
    g = torch.Generator().manual_seed(0)
    for n_in, n_out in [(3, 50), (50, 5), (50, 50), (13, 1)]:
        x = torch.randn(2, 300, n_in, generator=g, requires_grad=True)
        w = torch.randn(n_out, n_in, generator=g, requires_grad=True)
        up = torch.randn(2, 300, n_out, generator=g)
        mine = torch.autograd.grad((tall_linear(x, w) * up).sum(), (x, w))
        ref = torch.autograd.grad((F.linear(x, w) * up).sum(), (x, w))
        assert torch.allclose(tall_linear(x, w), F.linear(x, w), atol=1e-5)
        for a, b in zip(mine, ref):
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-5)
    v = torch.linspace(-12, 12, 20001, requires_grad=True)
    assert (fast_tanh(v) - torch.tanh(v)).abs().max() < 2e-7
    (d_fast,) = torch.autograd.grad(fast_tanh(v).sum(), v)
    (d_ref,) = torch.autograd.grad(torch.tanh(v).sum(), v)
    assert (d_fast - d_ref).abs().max() < 1e-6


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("activation", [torch.nn.Tanh(), torch.nn.ReLU()])
def test_made_broadcast_equals_per_pair(residual, activation):
    torch.manual_seed(0)
    made = MADE(D, C, params_per_dim=3, hidden=24, num_blocks=2, residual=residual, activation=activation)
    with torch.no_grad():
        for p in made.parameters():
            p.add_(0.3 * torch.randn(p.shape))
    theta, x, idx, theta_pairs, x_pairs = pairs()
    shared = made(theta[idx], x[:, None])
    plain = made(theta_pairs, x_pairs).view(B, K, D, 3)
    assert shared.shape == (B, K, D, 3)
    assert torch.allclose(shared, plain, atol=1e-5)
    assert_same_grads(grads(made, shared * plain.detach()), grads(made, plain * plain.detach()))


def test_residual_net_and_ratio_broadcast_equal_per_pair():
    torch.manual_seed(0)
    net = ResidualNet(D, 6, C, hidden=16, num_blocks=2)
    theta, x, idx, theta_pairs, x_pairs = pairs()
    assert torch.allclose(net(theta[idx], x[:, None]), net(theta_pairs, x_pairs).view(B, K, 6), atol=1e-5)
    f = RatioEstimator(D, C)
    f.fit_standardization(torch.randn(50, D), torch.randn(50, C))
    shared, plain = f.log_ratio(theta[idx], x[:, None]), f.log_ratio(theta_pairs, x_pairs).view(B, K)
    assert torch.allclose(shared, plain, atol=1e-5)
    assert_same_grads(grads(f, shared * plain.detach()), grads(f, plain * plain.detach()))


@pytest.mark.parametrize("name,opts", FLOWS, ids=IDS)
def test_flow_log_prob_broadcast_equals_per_pair(name, opts):
    q = make(name, opts, 0.3, D).train()  # train mode: BatchNorm's batch statistics are B·K rows in both
    assert q.capabilities.broadcast
    theta, x, idx, theta_pairs, x_pairs = pairs(opts=opts)
    shared = q.log_prob(theta[idx], x[:, None])
    plain = q.log_prob(theta_pairs, x_pairs).view(B, K)
    assert shared.shape == (B, K) and torch.isfinite(plain).all()
    assert torch.allclose(shared, plain, atol=1e-4, rtol=1e-5)
    assert_same_grads(grads(q, shared), grads(q, plain))


@pytest.mark.parametrize("method,estimator", [("snpe", "maf"), ("snpe", "nsf"), ("sre", None)])
def test_method_loss_takes_the_fast_path_and_equals_the_plain_loss(method, estimator):
    prior = BoxUniform(-3 * torch.ones(D), 3 * torch.ones(D))
    m = METHODS[method]
    net = m.build(prior, C, estimator, seed=0, estimator_kwargs={"hidden": 16})
    g = torch.Generator().manual_seed(0)
    theta = prior.sample((20,), generator=g)
    x = theta[:, :C] ** 2 + 0.1 * torch.randn(20, C, generator=g)
    m.standardize(net, prior, theta, x)
    if method == "snpe":
        def score(t, xx):
            return net.log_prob(t, xx) - prior.log_prob(t)
    else:
        score = net.log_ratio
    calls = []

    def spy(t, xx):
        calls.append((tuple(t.shape), tuple(xx.shape)))
        return score(t, xx)

    attr = "log_prob" if method == "snpe" else "log_ratio"
    network_calls = []

    def network_spy(t, xx, original=getattr(net, attr)):
        network_calls.append((tuple(t.shape), tuple(xx.shape)))
        return original(t, xx)

    setattr(net, attr, network_spy)  # the method's loss calls the network on the broadcast shapes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        fast = m.loss(net, prior, round_index=1, num_atoms=10)(theta, x)
    delattr(net, attr)
    assert network_calls == [((20, 10, D), (20, 1, C))]
    contrastive_loss(spy, theta, x, 10, generator=torch.Generator().manual_seed(5))
    assert calls == [((200, D), (200, C))]  # the plain path: B·K rows of θ and of x
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        plain = contrastive_loss(score, theta, x, 10)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        spied = contrastive_loss(spy, theta, x, 10, broadcast=True)
    assert calls[-1] == ((20, 10, D), (20, 1, C))  # the fast path: x once per row
    assert torch.allclose(fast, plain, atol=1e-5, rtol=1e-5) and torch.allclose(spied, plain, atol=1e-5, rtol=1e-5)
    assert_same_grads(grads(net, fast), grads(net, plain))


def test_separable_critic_pairwise_path_equals_the_plain_loss():
    """f = a(θ)ᵀb(x): its B×B matrix is f on every pair, and the method's loss (gathering each
    row's K atoms from that matrix) equals the per-pair loss, values and gradients."""
    prior = BoxUniform(-3 * torch.ones(D), 3 * torch.ones(D))
    m = METHODS["sre"]
    net = m.build(prior, C, None, seed=0, estimator_kwargs={"hidden": 16, "critic": "separable", "features": 8})
    g = torch.Generator().manual_seed(0)
    theta = prior.sample((20,), generator=g)
    x = theta[:, :C] ** 2 + 0.1 * torch.randn(20, C, generator=g)
    m.standardize(net, prior, theta, x)
    every = net.log_ratio(theta.repeat(20, 1), x.repeat_interleave(20, 0)).view(20, 20)
    assert torch.allclose(net.pairwise(theta, x), every, atol=1e-5)
    calls = []

    def pairwise_spy(t, xx, original=net.pairwise):
        calls.append((tuple(t.shape), tuple(xx.shape)))
        return original(t, xx)

    net.pairwise = pairwise_spy  # the method's loss takes the B×B path: one call on the minibatch itself
    with seeded_rng(1):
        fast = m.loss(net, prior, round_index=1, num_atoms=10)(theta, x)
    del net.pairwise
    assert calls == [((20, D), (20, C))]
    with seeded_rng(1):
        plain = contrastive_loss(net.log_ratio, theta, x, 10)
    assert fast.std() > 0.1  # not a constant that would match any path
    assert torch.allclose(fast, plain, atol=1e-5, rtol=1e-5)
    assert_same_grads(grads(net, fast), grads(net, plain))
    with pytest.raises(ValueError, match="choose one"):
        contrastive_loss(net.pairwise, theta, x, 10, broadcast=True, pairwise=True)
    with pytest.raises(ValueError, match="critic must be one of"):
        RatioEstimator(D, C, critic="bilinear")
