"""Flow-specific checks: layer log-dets against autograd, exact inverses, MADE structure, LU and
BatchNorm, 2-D normalisation. The contract shared by every estimator is in test_contract.py."""

import math

import pytest
import torch

from sbi_lite.density import layers
from sbi_lite.density.transforms import BatchNorm, LULinear
from sbi_lite.nn import MADE
from test_contract import inputs_for, make

SMALL = dict(hidden=16, num_transforms=2)
BOX = dict(SMALL, bounds=(-2 * torch.ones(1), 3 * torch.ones(1)))
FLOWS = [("maf", SMALL), ("nsf", SMALL), ("nsf_ar", SMALL), ("nsf", BOX), ("nsf_ar", BOX)]
IDS = ["maf", "nsf", "nsf_ar", "nsf_box", "nsf_ar_box"]


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)  # tests draw contexts with torch.randn; keep them reproducible


@pytest.mark.parametrize("name,opts", FLOWS, ids=IDS)
def test_layer_logdets_match_autograd_jacobians(name, opts):
    d = 4
    q = make(name, opts, 0.3, d)
    y = inputs_for(opts, 3, d)
    z, _ = q.input_map(y)
    if "bounds" in opts:
        z = z.clamp(-0.95, 0.95)
    c = torch.randn(3, 3)
    for layer in q.transform.transforms:
        for i in range(len(z)):
            jac = torch.autograd.functional.jacobian(lambda v: layer(v[None], c[i:i + 1])[0][0], z[i])
            _, logdet = layer(z[i:i + 1], c[i:i + 1])
            assert torch.linalg.slogdet(jac.double()).logabsdet.item() == pytest.approx(logdet.item(), abs=1e-4)
        z = layer(z, c)[0].detach()


@pytest.mark.parametrize("name,opts", FLOWS, ids=IDS)
def test_inverse_sampling_and_determinism(name, opts):
    d = 3
    q = make(name, opts, 0.3, d)
    c = torch.randn(6, 3)
    y = inputs_for(opts, 6, d)
    # exactness in float64 (float32 round-off is amplified where perturbed splines are flat)
    q64 = make(name, opts, 0.3, d).double()
    z, _ = q64.input_map(y.double())
    c64 = q64.context_map(c.double())[0]
    u, ld = q64.transform(z, c64)
    back, ld_inv = q64.transform.inverse(u, c64)
    assert (back - z).abs().max() < 1e-8 and (ld + ld_inv).abs().max() < 1e-6
    a = q.sample(50, c[0], generator=torch.Generator().manual_seed(3))
    b = q.sample(50, c[0], generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.isfinite(q.log_prob(a, c[0].expand(50, -1))).all()
    if "bounds" in opts:
        many = q.sample(2000, c[0])
        assert (many >= -2).all() and (many <= 3).all()
        assert torch.isneginf(q.log_prob(torch.full((1, d), 3.5), c[:1])).all()
    # changing the context changes the density
    assert not torch.allclose(q.log_prob(y, c), q.log_prob(y, c.flip(0)))


@pytest.mark.parametrize("name,opts", FLOWS, ids=IDS)
def test_2d_density_integrates_to_one(name, opts):
    c1 = torch.randn(1, 3, dtype=torch.float64)
    q2 = make(name, opts, 0.1, 2).double()  # keeps the mass inside the grid
    lo2, hi2 = (-2.0, 3.0) if "bounds" in opts else (-8.0, 8.0)
    ax = torch.linspace(lo2, hi2, 501, dtype=torch.float64)
    yy = torch.cartesian_prod(ax, ax)
    with torch.no_grad():
        dens2 = q2.log_prob(yy, c1.expand(len(yy), -1)).exp().view(501, 501)
    mass = torch.trapezoid(torch.trapezoid(dens2, ax, dim=1), ax)
    assert abs(1 - mass.item()) < 1e-2


@pytest.mark.parametrize("d,residual", [(1, True), (4, True), (4, False)])
def test_made_is_autoregressive(d, residual):
    made = MADE(d, 2, params_per_dim=3, hidden=12, num_blocks=2, residual=residual)
    with torch.no_grad():
        for p in made.parameters():
            p.add_(0.5 * torch.randn_like(p))
    y, c = torch.randn(d), torch.randn(2)
    jac = torch.autograd.functional.jacobian(lambda v: made(v[None], c[None])[0], y)  # (d, P, d)
    for i in range(d):
        assert jac[i, :, i:].abs().max() == 0
        if i > 0:
            assert jac[i, :, :i].abs().max() > 0
    jc = torch.autograd.functional.jacobian(lambda v: made(y[None], v[None])[0], c)
    assert (jc.abs().sum(-1) > 0).all()  # the context reaches every output


def test_lu_linear_and_batchnorm():
    lu = LULinear(4)
    x = torch.randn(5, 4)
    assert torch.allclose(lu(x)[0], x) and lu(x)[1].abs().max() < 1e-6
    with torch.no_grad():
        for p in lu.parameters():
            p.add_(0.3 * torch.randn_like(p))
    w = lu.weight()
    assert lu.logabsdet().item() == pytest.approx(torch.linalg.slogdet(w).logabsdet.item(), abs=1e-5)
    y, _ = lu(x)
    assert torch.allclose(lu.inverse(y)[0], torch.linalg.solve(w, (y - lu.bias).T).T, atol=1e-5)
    bn = BatchNorm(4)
    bn.eval()  # running variance starts at ones: safe before any training
    assert torch.allclose(bn(x)[0], x, atol=1e-4)
    bn.train()
    for _ in range(5):
        bn(3 * torch.randn(64, 4) + 1)
    bn.eval()
    y, ld = bn(x)
    back, ld_inv = bn.inverse(y)
    assert torch.allclose(back, x, atol=1e-5) and torch.allclose(ld + ld_inv, torch.zeros(5), atol=1e-5)


@pytest.mark.parametrize("name,opts", [("nsf", SMALL), ("nsf", BOX)], ids=["nsf", "nsf_box"])
@pytest.mark.parametrize("shape", [(40,), (4, 10)], ids=["rows", "broadcast"])
def test_coupling_paths_give_the_same_density_and_gradients(name, opts, shape, monkeypatch):
    """A coupling layer evaluates both halves in one spline call up to _ONE_CALL_ROWS rows and in
    two beyond: the density and its gradients must not depend on which path ran, also with one
    context broadcast against K inputs each (the contrastive loss's (B, K, D) against (B, 1, C))."""
    d = 5
    q = make(name, opts, 0.3, d)
    y = inputs_for(opts, math.prod(shape), d).view(*shape, d)
    c = torch.randn(*shape[:-1], 1, 3) if len(shape) > 1 else torch.randn(*shape, 3)
    results = []
    for rows in (10**12, 0):  # every batch through one call, then every batch through two
        monkeypatch.setattr(layers, "_ONE_CALL_ROWS", rows)
        q.zero_grad(set_to_none=True)
        lp = q.log_prob(y, c)
        lp.sum().backward()
        results.append((lp.detach(), [p.grad.clone() for p in q.parameters()]))
    (one, one_grads), (two, two_grads) = results
    assert one.shape == shape and one.std() > 0.3  # varies: a permuted output would not match
    assert (one - two).abs().max() < 1e-5
    scale = max(float(g.abs().max()) for g in one_grads)
    assert max(float((a - b).abs().max()) for a, b in zip(one_grads, two_grads)) < 1e-5 * scale
