import math

import pytest
import torch
from torch import nn

from sbi_lite.density import build
from sbi_lite.train import TrainConfig, train


def conditional_data(n, seed):
    """y1 | c ~ N(c1, 0.5²); y2 | y1, c ~ N(c2·y1 + sin(2 y1), 0.3²): an analytic 2-D conditional."""
    g = torch.Generator().manual_seed(seed)
    c = 2 * torch.rand(n, 2, generator=g) - 1
    y1 = c[:, 0] + 0.5 * torch.randn(n, generator=g)
    y2 = c[:, 1] * y1 + torch.sin(2 * y1) + 0.3 * torch.randn(n, generator=g)
    return torch.stack([y1, y2], -1), c


def true_log_prob(y, c):
    def log_normal(v, m, s):
        return -0.5 * ((v - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
    return log_normal(y[:, 0], c[:, 0], 0.5) + log_normal(y[:, 1], c[:, 1] * y[:, 0] + torch.sin(2 * y[:, 0]), 0.3)


def test_training_is_deterministic_and_restores_best_weights():
    y, c = conditional_data(600, 0)
    runs = []
    for _ in range(2):
        q = build("maf", 2, 2, num_transforms=2, hidden=16)
        q.fit_standardization(y, c)
        h = train(q, q.loss, (y, c), seed=3, config=TrainConfig(max_epochs=15, patience=3))
        runs.append((h, q.log_prob(y[:5], c[:5])))
    (h1, lp1), (h2, lp2) = runs
    assert h1.train_loss == h2.train_loss and torch.equal(lp1, lp2)
    assert h1.best_validation_loss == min(h1.validation_loss)
    assert h1.validation_loss[-1] >= h1.best_validation_loss
    assert h1.to_frame().shape == (h1.epochs, 3)
    assert h1.train_loss[-1] < h1.train_loss[0]


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="validation_fraction"):
        TrainConfig(validation_fraction=1.5)
    with pytest.raises(ValueError, match="ema must be in"):
        TrainConfig(ema=1.0)
    with pytest.raises(ValueError, match="lr_decays must be >= 0, got -1"):
        TrainConfig(lr_decays=-1)
    with pytest.raises(ValueError, match="lr_decay must be in"):
        TrainConfig(lr_decay=1.5)
    with pytest.raises(TypeError, match=r"batch_size must be a whole number, got batch_size=1.5"):
        TrainConfig(batch_size=1.5)
    with pytest.raises(TypeError, match=r"learning_rate must be a number, got learning_rate=None"):
        TrainConfig(learning_rate=None)
    with pytest.raises(TypeError, match=r"fixed_validation_draws must be True or False, got fixed_validation_draws=1"):
        TrainConfig(fixed_validation_draws=1)
    with pytest.raises(ValueError, match="same length"):
        train(torch.nn.Linear(1, 1), lambda a, b: a[:, 0], (torch.zeros(5, 1), torch.zeros(4, 1)))


def test_weight_averaging_returns_the_exponential_average():
    """Loss −μ: each Adam step moves μ by exactly lr, so μ_k = k·lr and the EMA after K steps is
    Σ_k (1 − a) a^(K−k) k·lr (starting from μ_0 = 0); validation improves every epoch, so the
    returned weights are that average, not the last iterate."""
    mu = torch.nn.Parameter(torch.zeros(1))
    module = torch.nn.Module()
    module.mu = mu
    a, lr, steps = 0.9, 0.01, 20
    train(module, lambda v: -mu.expand(len(v)), (torch.zeros(11, 1),), seed=0,
          config=TrainConfig(learning_rate=lr, batch_size=10, max_epochs=steps, ema=a))
    expected = sum((1 - a) * a ** (steps - k) * k * lr for k in range(1, steps + 1))
    value = float(mu.detach())
    assert value == pytest.approx(expected, rel=1e-5) and value < steps * lr * 0.7


@pytest.mark.slow
@pytest.mark.parametrize("name", ["maf", "nsf", "nsf_ar", "diffusion"])
def test_fit_reaches_true_conditional_nll(name):
    y, c = conditional_data(8000, 1)
    y_test, c_test = conditional_data(5000, 2)
    q = build(name, 2, 2)
    q.fit_standardization(y, c)
    config = TrainConfig(batch_size=256, learning_rate=1e-3, max_epochs=120, patience=15, ema=q.capabilities.ema)
    train(q, q.loss, (y, c), seed=0, config=config)
    with torch.no_grad():
        gap = float(-q.log_prob(y_test[:2000], c_test[:2000]).mean() + true_log_prob(y_test[:2000], c_test[:2000]).mean())
    print(f"{name}: held-out NLL gap {gap:.3f} nats")
    assert gap < 0.1


def test_validation_of_a_contrastive_loss_never_sees_a_one_row_chunk():
    """4,097 pairs at 4,096 rows per validation chunk used to leave a chunk of one row, which the
    K-class contrastive loss (K >= 2) cannot score: 10 rounds × 4,097 simulations died after all
    simulations were spent."""
    from sbi_lite.losses import contrastive_loss
    from sbi_lite.train import _mean_loss

    theta, x = torch.randn(4097, 1), torch.randn(4097, 1)
    score = lambda t, v: -(t - v).pow(2).sum(-1)  # noqa: E731
    value = _mean_loss(lambda t, v: contrastive_loss(score, t, v, min(10, len(t))), (theta, x))
    assert math.isfinite(value) and value > 0


def test_the_best_validation_weights_are_restored():
    """Training pushes μ up by exactly lr per step (Adam on a constant gradient); the validation
    loss (μ − 0.103)² is best at μ = 0.10 (step 10) and worse after, so early stopping runs on to
    step 13 and must hand back μ = 0.10, not the last iterate 0.13."""
    module = torch.nn.Module()
    module.mu = torch.nn.Parameter(torch.zeros(1))

    def loss(v):
        mu = module.mu.expand(len(v))
        return -mu if module.training else (mu - 0.103) ** 2

    h = train(module, loss, (torch.zeros(11, 1),), seed=0,
              config=TrainConfig(learning_rate=0.01, batch_size=10, max_epochs=100, patience=3, clip_grad_norm=None))
    assert h.epochs == 13 and h.best_epoch == 9
    assert float(module.mu.detach()) == pytest.approx(0.10, abs=1e-6)


@pytest.mark.parametrize("fixed", [False, True])
def test_fixed_validation_draws_score_every_epoch_on_the_same_draws(fixed):
    """A contrastive validation loss on frozen weights: with the draws fixed, every epoch sees the
    same atoms, so the same loss; without, the atoms (and the loss) change from epoch to epoch. The
    training's own stream is the one it would be without validation draws."""
    from sbi_lite.losses import contrastive_loss

    module = torch.nn.Module()
    module.w = torch.nn.Parameter(torch.ones(1))
    score = lambda t, v: -(module.w * (t - v)).pow(2).sum(-1)  # noqa: E731
    seen = []

    def loss(t, v):
        if module.training:
            seen.append(torch.rand(1))  # the training's stream, after the epoch's shuffle
            return 0 * module.w.expand(len(t))  # no gradient, so Adam leaves w where it is
        return contrastive_loss(score, t, v, num_atoms=5)

    theta, x = torch.randn(200, 1), torch.randn(200, 1)
    config = TrainConfig(batch_size=180, max_epochs=6, patience=10, fixed_validation_draws=fixed)
    h = train(module, loss, (theta, x), seed=0, config=config)
    assert len(set(h.validation_loss)) == (1 if fixed else 6)
    # the validation draws come from their own stream: the training's draws are what a run whose
    # validation draws nothing sees
    reference = []

    def quiet(t, v):
        if module.training:
            reference.append(torch.rand(1))
        return 0 * module.w.expand(len(t))

    train(module, quiet, (theta, x), seed=0, config=config)
    assert torch.equal(torch.cat(seen), torch.cat(reference)) == fixed


def test_rows_held_out_for_validation_are_never_trained_on():
    seen_training, seen_validation = set(), set()
    net = nn.Linear(1, 1)
    ids = torch.arange(200.0)[:, None]

    def loss(i, y):
        (seen_training if net.training else seen_validation).update(i[:, 0].long().tolist())
        return (net(y) - y).pow(2)[:, 0]

    mask = torch.zeros(200, dtype=torch.bool)
    mask[:30] = True
    train(net, loss, (ids, torch.randn(200, 1)), seed=0, validation=mask,
          config=TrainConfig(batch_size=10, max_epochs=3))
    assert seen_validation == set(range(30)) and seen_training == set(range(30, 200))
    with pytest.raises(ValueError, match="validation"):
        train(net, loss, (ids, torch.randn(200, 1)), validation=torch.ones(200, dtype=torch.bool))


def test_the_held_out_rows_of_a_round_stay_held_out_in_later_rounds():
    from sbi_lite.inference import RoundStore

    store = RoundStore()
    store.add(torch.zeros(1000, 2), torch.zeros(1000, 3), 0)
    first = store.held_out(0.1, seed=7)
    store.add(torch.zeros(500, 2), torch.zeros(500, 3), 1)
    both = store.held_out(0.1, seed=7)
    assert torch.equal(both[:1000], first) and int(first.sum()) == 100 and int(both[1000:].sum()) == 50
    assert not torch.equal(store.held_out(0.1, seed=8)[:1000], first)


def _sine_fit_error(lr_decays: int, seed: int) -> tuple[float, int]:
    """Squared error of a small net fitted to noisy sin(2x) at a learning rate too high to settle."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(2000, 1, generator=gen) * 6 - 3
    y = torch.sin(2 * x) + 0.1 * torch.randn(2000, 1, generator=gen)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
    history = train(net, lambda a, b: (net(a) - b).pow(2)[:, 0], (x, y), seed=seed,
                    config=TrainConfig(learning_rate=5e-2, batch_size=50, patience=10, lr_decays=lr_decays))
    grid = torch.linspace(-3, 3, 500)[:, None]
    with torch.no_grad():
        return float((net(grid) - torch.sin(2 * grid)).pow(2).mean()), history.epochs


def test_learning_rate_decays_go_on_from_the_best_weights_and_fit_closer():
    for seed in range(3):
        plain, plain_epochs = _sine_fit_error(0, seed)
        decayed, decayed_epochs = _sine_fit_error(2, seed)
        # two stalls more, each at least `patience` epochs
        assert decayed_epochs >= plain_epochs + 20
        assert decayed < 0.35 * plain, (seed, plain, decayed)
