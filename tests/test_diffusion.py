import pytest
import torch
from scipy import integrate, stats

from sbi_lite.density import build
from sbi_lite.density.score import SubVPSDE, VESDE, VPSDE, solve_rk45


def test_transition_kernels_match_euler_maruyama():
    g = torch.Generator().manual_seed(0)
    for sde in (VPSDE(), SubVPSDE(), VESDE(sigma_max=5.0)):
        y, t_end, steps = torch.full((100_000,), 1.5, dtype=torch.float64), 0.3, 600
        dt = t_end / steps
        for k in range(steps):
            t = torch.tensor(k * dt, dtype=torch.float64)
            y = y + sde.drift_coeff(t) * y * dt + torch.sqrt(sde.g2(t) * dt) * torch.randn(y.shape, generator=g, dtype=y.dtype)
        t = torch.tensor(t_end, dtype=torch.float64)
        mean = float(sde.mean_coeff(t) * 1.5)
        var = float(sde.std(t) ** 2 - (sde.std(torch.tensor(0.0, dtype=torch.float64)) ** 2 if isinstance(sde, VESDE) else 0))
        assert float(y.mean()) == pytest.approx(mean, abs=1e-2 * max(1, abs(mean)))
        assert float(y.var()) == pytest.approx(var, rel=1e-2, abs=1e-2)


@pytest.mark.parametrize("sde,anchors", [(VPSDE(), {1e-5: 23.8645, 1e-3: 19.1654, 1e-2: 16.2661}),
                                         (SubVPSDE(), {1e-5: 37.6789, 1e-3: 28.2809, 1e-2: 22.4841})])
def test_importance_sampler_normaliser_and_distribution(sde, anchors):
    for eps, z in anchors.items():
        quad = integrate.quad(lambda t: float(sde.g2(torch.tensor(t)) / sde.std(torch.tensor(t)) ** 2), eps, 1,
                              limit=200, points=[eps * 10, 0.01, 0.1])[0]
        assert sde.z(eps) == pytest.approx(quad, rel=1e-6)
        assert sde.z(eps) == pytest.approx(z, abs=1e-4)
    eps = 1e-3
    t = sde.sample_time(20_000, eps, torch.Generator().manual_seed(0)).double()
    lo = sde._cdf(torch.tensor(eps, dtype=torch.float64))

    def cdf(v):
        return ((sde._cdf(torch.as_tensor(v, dtype=torch.float64)) - lo) / sde.z(eps)).numpy()

    assert stats.kstest(t.numpy(), cdf).pvalue > 1e-3
    # the importance-sampled and uniform estimators of ∫ g² h dt agree (h = cos t):
    # ∫ g² h = Z ∫ p(t) σ_t² h(t) dt
    h = torch.cos
    is_est = float(sde.z(eps) * (sde.std(t) ** 2 * h(t)).mean())
    u = eps + (1 - eps) * torch.rand(200_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    uni = float((1 - eps) * (sde.g2(u) * h(u)).mean())
    assert is_est == pytest.approx(uni, rel=2e-2)


def analytic(q, mean, cov):
    sde = q.sde

    def score(y, t, c):
        m = sde.mean_coeff(t)[:, None, None]
        s2 = sde.std(t)[:, None, None] ** 2
        return -torch.linalg.solve(m**2 * cov + s2 * torch.eye(2), (y - m[:, :, 0] * mean)[..., None])[..., 0]

    q.score = score
    return q


def test_ode_log_density_and_bound_with_the_exact_score():
    mean, cov = torch.zeros(2), torch.tensor([[1.0, 0.6], [0.6, 1.0]])  # standardised data
    q = analytic(build("diffusion", 2, 1, hidden=16), mean, cov)
    g = torch.Generator().manual_seed(0)
    y = torch.randn(300, 2, generator=g) @ torch.linalg.cholesky(cov).T
    c = torch.zeros(300, 1)
    true = torch.distributions.MultivariateNormal(mean, cov).log_prob(y)
    assert (q.log_prob(y, c) - true).abs().max() < 1e-3
    torch.manual_seed(0)
    per_point = q.bound(y, c, num_times=1000)
    bound, se, nll = per_point.mean(), per_point.std() / len(per_point) ** 0.5, -true.mean()
    assert bound >= nll - 3 * se and bound - nll < 0.1 + 3 * se  # an upper bound, and tight (Thm 2)
    for method in ("ode", "sde"):
        s = q.sample(4000, torch.zeros(1), generator=torch.Generator().manual_seed(1), method=method)
        assert (s.mean(0) - mean).abs().max() < 0.06 and (torch.cov(s.T) - cov).abs().max() < 0.08


def test_hutchinson_divergence_is_unbiased():
    q = build("diffusion", 3, 2, hidden=16, num_blocks=1)
    g = torch.Generator().manual_seed(0)
    n = 10_000
    y, c = torch.randn(1, 3, generator=g).expand(n, 3), torch.randn(1, 2, generator=g).expand(n, 2)
    _, exact = q.divergence(y[:1], 0.3, c[:1])
    probe = torch.randint(0, 2, (n, 3), generator=g).float() * 2 - 1
    drift, estimate = q.divergence(y, 0.3, c, probe)
    assert torch.allclose(drift, drift[:1].expand(n, 3), atol=1e-6)
    se = estimate.std() / n**0.5
    assert abs(float(estimate.mean() - exact[0])) < 3 * se and se > 0  # unbiased, and genuinely random
    lp = q.log_prob(y[:64], c[:64], hutchinson=True, generator=g)
    assert torch.isfinite(lp).all() and lp.std() > 0  # one probe per point: noisy, but a density


@pytest.mark.slow
def test_trained_ode_and_sde_samplers_reproduce_a_gaussian_mixture():
    """A short CPU training run on an equal mixture of N(±(1.5, 0), 0.5² I) (constant context):
    both samplers must recover the two modes' weights, means and spread."""
    from sbi_lite.train import TrainConfig, train

    g = torch.Generator().manual_seed(0)
    n = 4000
    sign = torch.randint(0, 2, (n, 1), generator=g) * 2 - 1
    y = torch.cat([1.5 * sign, torch.zeros(n, 1)], -1) + 0.5 * torch.randn(n, 2, generator=g)
    c = torch.zeros(n, 1)
    q = build("diffusion", 2, 1, hidden=64)
    q.fit_standardization(y, c)
    # patience 50: the score-matching loss creeps down for hundreds of epochs, and at patience 20
    # training stopped at epoch 53 with 21% of the samples bridging the modes (4% here; truth 2.3%)
    train(q, q.loss, (y, c), seed=0, config=TrainConfig(batch_size=128, learning_rate=1e-3, max_epochs=400,
                                                        patience=50, ema=q.capabilities.ema))
    for method in ("ode", "sde"):
        s = q.sample(4000, torch.zeros(1), generator=torch.Generator().manual_seed(1), method=method)
        right = s[:, 0] > 0
        print(f"{method}: right-mode weight {right.float().mean():.3f}, mean {s[right].mean(0).tolist()}, "
              f"sd {s[right].std(0).tolist()}")
        assert abs(float(right.float().mean()) - 0.5) < 0.04
        assert float((s[:, 0].abs() < 0.5).float().mean()) < 0.08  # little mass between the modes
        for mode, m in ((right, 1.5), (~right, -1.5)):
            assert (s[mode].mean(0) - torch.tensor([m, 0.0])).abs().max() < 0.1
            assert (s[mode].std(0) - 0.5).abs().max() < 0.08


def test_rk45_solves_each_row_as_if_alone():
    """A stiff row must not set the step size of the easy rows: each row gets its own error
    control (a shared step made every row pay the stiffest row's steps), so every row's result
    and step count are those of solving it alone, and the batch costs the sum of its rows."""
    rates = torch.cat([torch.ones(50), torch.tensor([3000.0])])  # dy/dt = −rate·y; the last row is stiff

    def decay(y, t, rows):
        return -rates[rows, None] * y

    y0 = torch.ones(len(rates), 1, dtype=torch.float64)
    out, stats = solve_rk45(decay, y0, 0.0, 1.0)
    alone = [solve_rk45(lambda y, t, rows, i=i: decay(y, t, rows + i), y0[i:i + 1], 0.0, 1.0) for i in range(len(rates))]
    assert torch.allclose(out, torch.cat([o for o, _ in alone]), rtol=1e-12, atol=1e-15)
    assert stats.steps.tolist() == [int(s.steps[0]) for _, s in alone]
    easy, stiff = int(alone[0][1].steps[0]), int(alone[-1][1].steps[0])
    assert stiff > 10 * easy  # the stiff row really is stiff...
    # ...and the batch costs its rows' own evaluations (plus the first call), not 51 × the stiff row's
    assert stats.row_evaluations == len(rates) + 6 * (50 * easy + stiff)
    assert (out[:, 0] - torch.exp(-rates)).abs().max() < 1e-4  # accurate (the stiff row decays to ~0)


def test_log_prob_with_one_stiff_row_costs_about_what_its_rows_cost_alone():
    """Exact-score Gaussians N(0, v I) with v given by the context: one row with a tiny variance
    (a stiff ODE near t = ε) among easy ones. log q must stay exact for every row, and the network
    must not be evaluated on the easy rows as often as on the stiff one."""
    q = build("diffusion", 2, 1, hidden=16)
    sde, calls = q.sde, []

    def score(y, t, c):
        calls.append(len(y))
        return -y / (sde.mean_coeff(t)[:, None] ** 2 * c + sde.std(t)[:, None] ** 2)

    q.score = score
    v = torch.cat([torch.ones(31), torch.tensor([1e-4])])[:, None]
    y = torch.randn(len(v), 2, generator=torch.Generator().manual_seed(0)) * v.sqrt()
    # the flow starts at t = ε, where the data's law is N(0, (m_ε² v + σ_ε²) I)
    eps = torch.tensor([q.eps])
    var_eps = sde.mean_coeff(eps) ** 2 * v + sde.std(eps) ** 2
    true = torch.distributions.Normal(0.0, var_eps.sqrt()).log_prob(y).sum(-1)
    lp = q.log_prob(y, v)
    batch_cost = sum(calls)
    assert (lp - true).abs().max() < 5e-4  # measured 8e-5
    calls.clear()
    q.log_prob(y[:-1], v[:-1])
    easy = sum(calls) / (len(v) - 1)  # per easy row
    calls.clear()
    q.log_prob(y[-1:], v[-1:])
    stiff = sum(calls)
    assert stiff > 3 * easy
    # measured: 25 evaluations per easy row, 121 for the stiff one, 896 for the batch; with one
    # step size and one error norm for the batch (the old solver), 3,104
    assert batch_cost <= 1.05 * ((len(v) - 1) * easy + stiff)
