"""Saving and loading posteriors: every method × estimator round-trips to the same log_prob and
the same seeded draws; foreign files, other versions and undescribable priors are refused."""

import pickle

import pandas as pd
import pytest
import torch
from torch import distributions as D

import sbi_lite
from sbi_lite import AffineBoxUniform, BoxUniform, DirectPosterior, MCMCPosterior, TorchPrior, TrainConfig, build, infer
from sbi_lite.inference import METHODS
from sbi_lite.samplers import SliceSampler

PRIOR = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
X0 = [0.6, -0.4]
THETA = torch.tensor([[0.5, -0.5], [0.0, 0.0], [1.5, 1.0], [-2.5, 2.9], [3.5, 0.0]])  # the last is outside

TINY = {
    "maf": dict(hidden=8, num_transforms=2),
    "nsf": dict(hidden=8, num_transforms=2, num_blocks=1, bins=4),
    "nsf_ar": dict(hidden=8, num_transforms=2, num_blocks=1, bins=4),
    "aem": dict(hidden=16, context_vector=4, components=3, energy_hidden=16, eval_samples=50, sir_proposals=20),
    "diffusion": dict(hidden=16, num_blocks=1, rtol=1e-3, atol=1e-3),
    "sre": dict(hidden=16, num_blocks=1),
    "separable": dict(hidden=16, num_blocks=1, critic="separable", features=8),
}

CASES = ([("snpe", e) for e in ("maf", "nsf", "nsf_ar", "box_nsf", "aem", "diffusion")]
         + [("snl", e) for e in ("maf", "nsf", "nsf_ar")]  # SNL + AEM is refused
         + [("sre", None), ("sre", "separable")])


def linear_gaussian(theta, rng):
    return theta + 0.5 * rng.standard_normal(theta.shape)


def tiny_infer(method, estimator, rounds=1, simulations=200):
    box = estimator == "box_nsf"
    kwargs = TINY["nsf" if box else estimator or "sre"]
    estimator = None if box or method == "sre" else estimator  # SRE's "separable" names kwargs, not an estimator
    return infer(linear_gaussian, PRIOR, X0, method=method, estimator=estimator,
                 leakage_free=box, rounds=rounds, simulations_per_round=simulations, seed=0, progress=False, chains=4,
                 estimator_kwargs=kwargs, train_config=TrainConfig(max_epochs=2))


def assert_same(post, loaded, n=8):  # 8 draws: 2 per chain, 20 slice sweeps for MCMC posteriors
    assert type(loaded) is type(post)
    assert torch.equal(loaded.log_prob(THETA), post.log_prob(THETA))
    if getattr(post, "estimator", None) is not None and post.estimator.capabilities.log_prob == "ode":
        # 200 simulations leave a diffusion model's q almost wholly outside the box, so compare q's
        # own seeded draws (DirectPosterior.sample is the same code for every estimator)
        def draw(p):
            return p.estimator.sample(n, p.x0, generator=torch.Generator().manual_seed(3))
        assert torch.equal(draw(loaded), draw(post))
    else:
        assert torch.equal(loaded.sample(n, seed=3), post.sample(n, seed=3))
    assert torch.equal(loaded.x0, post.x0) and repr(loaded.prior) == repr(post.prior)
    pd.testing.assert_frame_equal(loaded.history, post.history)


@pytest.mark.parametrize("method,estimator", CASES)
def test_round_trip_gives_the_same_posterior(method, estimator, tmp_path):
    post = tiny_infer(method, estimator)
    assert torch.isneginf(post.log_prob(THETA)[-1]) and torch.isfinite(post.log_prob(THETA)[:-1]).all()
    post.save(tmp_path / "post.pt")
    loaded = sbi_lite.load(tmp_path / "post.pt")
    assert loaded.spec == post.spec and loaded.spec["method"] == method
    assert_same(post, loaded)
    if method != "snpe":  # the potential is an object now, so MCMC posteriors pickle too
        assert torch.equal(pickle.loads(pickle.dumps(post)).sample(8, seed=4), post.sample(8, seed=4))


def test_two_round_snl_round_trip_keeps_history_and_chains(tmp_path):
    post = tiny_infer("snl", "maf", rounds=2, simulations=50)  # 50 proposals: 125 sweeps of 4 chains
    assert list(post.history["round"]) == [1, 2] and list(post.history["proposal"]) == ["prior", "mcmc"]
    assert torch.equal(post.sample(30, seed=0), post.sample(30, seed=0))
    post.save(tmp_path / "post.pt")
    assert_same(post, sbi_lite.load(tmp_path / "post.pt"))


def _direct(prior, estimator="maf", sample_with="auto", **kwargs):
    spec = METHODS["snpe"].spec(prior, 2, estimator, kwargs)
    return DirectPosterior(build(estimator, prior.dim, 2, seed=5, **kwargs), prior, torch.zeros(2), spec=spec,
                           sample_with=sample_with, chains=4)


def test_direct_mcmc_snapshot_is_saved(tmp_path, monkeypatch):
    post = _direct(PRIOR, sample_with="mcmc", hidden=8, num_transforms=1)
    drawn = post.sample(8, seed=1)
    post.save(tmp_path / "post.pt")
    pending = []
    warm_up = SliceSampler.warm_up
    monkeypatch.setattr(SliceSampler, "warm_up", lambda s: pending.append(not s.tuned or s.needs_burn_in) or warm_up(s))
    loaded = sbi_lite.load(tmp_path / "post.pt")
    assert torch.equal(loaded.sample(8, seed=1), drawn)
    assert not any(pending)  # no tuning or burn-in after load: it restarted from the saved snapshot


@pytest.mark.parametrize("prior", [
    TorchPrior(D.MultivariateNormal(torch.zeros(2), torch.tensor([[1.0, 0.3], [0.3, 2.0]]))),
    TorchPrior(D.Independent(D.Normal(torch.zeros(2), torch.tensor([1.0, 0.5])), 1)),
    TorchPrior(D.Uniform(-torch.ones(2), torch.ones(2))),
    TorchPrior(D.Gamma(torch.tensor([2.0, 3.0]), torch.tensor([1.0, 2.0]))),
    AffineBoxUniform(torch.zeros(2), torch.tensor([1.0, 2.0]), torch.tensor([[1.0, 0.0], [-1.0, 1.0]])),
], ids=["mvn", "independent_normal", "uniform", "gamma", "affine_box"])
def test_priors_are_saved_by_their_parameters(prior, tmp_path):
    post = _direct(prior, hidden=8, num_transforms=1)
    theta = prior.sample((6,), generator=torch.Generator().manual_seed(0))
    post.save(tmp_path / "post.pt")
    loaded = sbi_lite.load(tmp_path / "post.pt")
    assert type(loaded.prior) is type(prior)
    assert torch.equal(loaded.prior.log_prob(theta), prior.log_prob(theta))
    assert torch.equal(loaded.log_prob(theta), post.log_prob(theta))
    assert torch.equal(loaded.sample(10, seed=1), post.sample(10, seed=1))


def test_unsupported_priors_and_hand_built_posteriors_are_refused_at_save(tmp_path):
    low_rank = TorchPrior(D.LowRankMultivariateNormal(torch.zeros(2), torch.ones(2, 1), torch.ones(2)))
    with pytest.raises(ValueError, match="LowRankMultivariateNormal"):
        _direct(low_rank, hidden=8, num_transforms=1).save(tmp_path / "a.pt")
    no_spec = DirectPosterior(build("maf", 2, 2, hidden=8), PRIOR, torch.zeros(2))
    with pytest.raises(ValueError, match="no spec"):
        no_spec.save(tmp_path / "b.pt")
    odd = _direct(PRIOR, hidden=8, num_transforms=1)
    odd.spec["estimator_kwargs"]["activation"] = torch.nn.Tanh()
    with pytest.raises(ValueError, match="not JSON data"):
        odd.save(tmp_path / "c.pt")
    assert not any(tmp_path.iterdir())


def test_other_format_versions_are_refused(tmp_path):
    _direct(PRIOR, hidden=8, num_transforms=1).save(tmp_path / "post.pt")
    payload = torch.load(tmp_path / "post.pt", weights_only=True)
    assert payload["format_version"] == 1 and isinstance(payload["config"], str)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="format version 99 .*reads format version 1"):
        sbi_lite.load(tmp_path / "future.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an sbi_lite posterior file"):
        sbi_lite.load(tmp_path / "other.pt")


UNPICKLED = []


def record_unpickling(note):
    UNPICKLED.append(note)


class Payload:
    """Calls ``record_unpickling`` when unpickled: a file holding it must never run code on load."""

    def __reduce__(self):
        return record_unpickling, ("ran",)


def test_load_never_unpickles_objects(tmp_path):
    _direct(PRIOR, hidden=8, num_transforms=1).save(tmp_path / "post.pt")
    payload = torch.load(tmp_path / "post.pt", weights_only=True)
    payload["history"] = Payload()
    torch.save(payload, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="pickled Python objects"):
        sbi_lite.load(tmp_path / "evil.pt")
    assert UNPICKLED == []
