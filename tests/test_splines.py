import math

import pytest
import torch

from sbi_lite.density.splines import (MIN_BIN_WIDTH, MIN_DERIVATIVE, _bins, bounded_rq_spline,
                                      rational_quadratic_spline, unbounded_rq_spline)

K, B = 8, 3.0


def params(n, scale=1.0, bounded=False, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, 3 * K + (1 if bounded else -1), generator=g)).to(dtype)


def test_round_trip_both_directions_float32():
    v = torch.linspace(-2 * B, 2 * B, 2001)
    p = params(len(v), scale=0.5)
    y, ld = unbounded_rq_spline(v, p)
    back, ld_inv = unbounded_rq_spline(y, p, inverse=True)
    assert (back - v).abs().max() < 1e-5
    assert (ld + ld_inv).abs().max() < 1e-4  # the inverse log-det is minus the forward one
    z = torch.linspace(-2 * B, 2 * B, 2001)
    x, _ = unbounded_rq_spline(z, p, inverse=True)
    assert (unbounded_rq_spline(x, p)[0] - z).abs().max() < 1e-5


def test_round_trip_is_exact_in_float64_even_for_extreme_parameters():
    v = torch.linspace(-2 * B, 2 * B, 2001, dtype=torch.float64)
    p = params(len(v), scale=3.0, dtype=torch.float64)
    y, _ = unbounded_rq_spline(v, p)
    assert (unbounded_rq_spline(y, p, inverse=True)[0] - v).abs().max() < 1e-9


def test_log_derivative_matches_autograd():
    v = torch.linspace(-2 * B, 2 * B, 1001).requires_grad_()
    p = params(len(v))
    y, ld = unbounded_rq_spline(v, p)
    grad, = torch.autograd.grad(y.sum(), v)
    assert (grad.log() - ld).abs().max() < 1e-4


def test_identity_tails_continuity_and_monotonicity():
    p = params(1).expand(4001, -1)
    v = torch.linspace(-2 * B, 2 * B, 4001, dtype=torch.float64)
    y, ld = unbounded_rq_spline(v, p.double())
    tails = v.abs() > B
    assert torch.equal(y[tails], v[tails]) and (ld[tails] == 0).all()
    assert (y[1:] > y[:-1]).all()
    # value and derivative continuous at every knot and at ±B
    lower, _, _ = _bins(p[0, :K].double(), -B, B, MIN_BIN_WIDTH)
    eps = 1e-7
    for knot in [*lower, torch.tensor(B, dtype=torch.float64)]:
        a, b = knot - eps, knot + eps
        (ya, yb), (la, lb) = unbounded_rq_spline(torch.stack([a, b]), p[:2].double())
        assert abs(float(yb - ya)) < 1e-5 and abs(float(lb - la)) < 1e-4


def test_identity_parameters_give_the_identity():
    v = torch.linspace(-B, B, 101, dtype=torch.float64)
    unit = math.log(math.expm1(1 - MIN_DERIVATIVE))
    p = torch.cat([torch.zeros(101, 2 * K), torch.full((101, K - 1), unit)], -1).double()
    y, ld = unbounded_rq_spline(v, p)
    assert (y - v).abs().max() < 1e-8 and ld.abs().max() < 1e-8


def test_bounded_variant_maps_interval_onto_itself():
    a, b = -1.0, 1.0
    p = params(3, scale=2.0, bounded=True)
    ends = torch.tensor([a, b, a, b, a, b])
    y, _ = bounded_rq_spline(ends, p.repeat_interleave(2, 0), left=a, right=b)
    assert torch.equal(y, ends)
    v = torch.linspace(a, b, 1001)
    pv = params(1, bounded=True).expand(1001, -1)
    y, ld = bounded_rq_spline(v, pv)
    assert y.min() >= a and y.max() <= b and (y[1:] >= y[:-1]).all()
    back, _ = bounded_rq_spline(y, pv, inverse=True)
    assert (back - v).abs().max() < 1e-5
    # a density pushed through the spline still integrates to one over the interval
    assert torch.trapezoid(ld.double().exp() / (b - a), v.double()).item() == pytest.approx(1.0, abs=1e-4)


def test_density_through_spline_integrates_to_one():
    v = torch.linspace(-12, 12, 200_001, dtype=torch.float64)
    p = params(1, dtype=torch.float64).expand(len(v), -1)
    z, ld = unbounded_rq_spline(v, p)
    log_q = -0.5 * z**2 - 0.5 * math.log(2 * math.pi) + ld
    assert abs(1 - torch.trapezoid(log_q.exp(), v).item()) < 1e-4


def test_parameter_constraints():
    g = torch.Generator().manual_seed(1)
    logits = 5 * torch.randn(10, K, generator=g)
    lower, widths, interior = _bins(logits, -B, B, MIN_BIN_WIDTH)
    assert (lower[:, 0] == -B).all() and torch.equal(lower[:, 1:], interior)
    assert torch.allclose(lower[:, -1] + widths[:, -1], torch.full((10,), B))
    assert torch.allclose(widths.sum(-1), torch.full((10,), 2 * B))
    assert (widths >= 2 * B * MIN_BIN_WIDTH * (1 - 1e-4)).all()
    with pytest.raises(ValueError, match="too many bins"):
        rational_quadratic_spline(torch.zeros(1), torch.zeros(1, 1000), torch.zeros(1, 1000), torch.zeros(1, 1001))
