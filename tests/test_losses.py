import math

import pytest
import torch

from sbi_lite.losses import atom_indices, contrastive_loss
from sbi_lite.ratio import RatioEstimator


def score(theta, x):
    return -(theta - 0.7 * x[:, :2]).pow(2).sum(-1) + 0.3 * theta[:, 0] * x[:, -1]


@pytest.mark.parametrize("k", [2, 5, 10])
def test_contrastive_loss_equals_naive_per_pair_loop(k):
    g = torch.Generator().manual_seed(0)
    theta, x = torch.randn(10, 2, generator=g), torch.randn(10, 3, generator=g)
    loss = contrastive_loss(score, theta, x, k, generator=torch.Generator().manual_seed(1))
    idx = atom_indices(10, k, torch.Generator().manual_seed(1))
    assert (idx[:, 0] == torch.arange(10)).all()
    for b in range(10):
        others = idx[b, 1:].tolist()
        assert b not in others and len(set(others)) == k - 1  # without replacement, never itself
        logits = torch.stack([score(theta[j:j + 1], x[b:b + 1])[0] for j in idx[b].tolist()])
        naive = -(logits[0] - torch.logsumexp(logits, 0))
        assert loss[b].item() == pytest.approx(naive.item(), abs=1e-5)


def test_k_equals_batch_is_the_full_score_matrix():
    g = torch.Generator().manual_seed(2)
    theta, x = torch.randn(6, 2, generator=g), torch.randn(6, 3, generator=g)
    f = RatioEstimator(2, 3)
    matrix = f.pairwise(theta, x)  # [i, j] = f(θ_j, x_i)
    want = torch.logsumexp(matrix, 1) - matrix.diagonal()
    assert torch.allclose(contrastive_loss(f.log_ratio, theta, x, 6), want, atol=1e-5)


def test_k2_is_the_binary_logistic_form():
    g = torch.Generator().manual_seed(3)
    theta, x = torch.randn(8, 2, generator=g), torch.randn(8, 3, generator=g)
    loss = contrastive_loss(score, theta, x, 2, generator=torch.Generator().manual_seed(4))
    j = atom_indices(8, 2, torch.Generator().manual_seed(4))[:, 1]
    own, other = score(theta, x), score(theta[j], x)
    assert torch.allclose(loss, -torch.nn.functional.logsigmoid(own - other), atol=1e-6)


def test_optimum_is_invariant_to_the_proposal():
    """θ ∈ {0, 1}, x ∈ {0, 1}: the exact minimiser over tabular f is log p(θ|x)/p(θ) + c(x),
    whatever the proposal; minimise the expected K = 2 loss under two proposals and compare."""
    p_x_given_theta = torch.tensor([[0.8, 0.2], [0.3, 0.7]])  # [θ, x]
    prior = torch.tensor([0.5, 0.5])
    post = prior[:, None] * p_x_given_theta
    post = post / post.sum(0)  # p(θ|x), [θ, x]
    target = torch.log(post / prior[:, None])
    target = target - target[0]  # identifiable only up to c(x)
    for proposal in (torch.tensor([0.5, 0.5]), torch.tensor([0.85, 0.15])):
        f = torch.zeros(2, 2, requires_grad=True)
        opt = torch.optim.Adam([f], lr=0.05)
        joint = proposal[:, None] * p_x_given_theta  # pairs (θ, x) from proposal × simulator
        for _ in range(3000):
            # expected loss with one contrasting θ' ~ proposal (the B → ∞ limit of K = 2)
            loss = 0.0
            for t in range(2):
                for xx in range(2):
                    for t2 in range(2):
                        logits = torch.stack([f[t, xx], f[t2, xx]])
                        loss = loss + joint[t, xx] * proposal[t2] * (torch.logsumexp(logits, 0) - f[t, xx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        learned = (f - f[0]).detach()  # = log p(x|θ) + c(x) = log p(θ|x)/p(θ) + c'(x), for any π
        assert torch.allclose(learned, target, atol=2e-2), (proposal, learned, target)


def test_bad_num_atoms():
    with pytest.raises(ValueError, match="num_atoms"):
        atom_indices(10, 11)
    assert math.isfinite(contrastive_loss(score, torch.zeros(3, 2), torch.zeros(3, 3), 3).sum().item())
