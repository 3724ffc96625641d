"""Two-dimensional conditional densities: MAF, NSF, AEM and diffusion side by side.

Each target is a 2-D density rotated by an angle c·π/2 that the estimator receives as context,
c ~ U(−1, 1), so every estimator learns q(y|c) as it would in SBI. The exact log-density is
known (rotations keep volume), so the table reports the held-out NLL gap to the truth, and the
figure shows each q(y|c = 0.5) on a grid beside the truth.

Run (~20 min on one idle core):
    .venv/bin/python benchmarks/density_2d.py
writes results/density_2d.md (table) and results/density_2d.png (figure).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sbi_lite import TrainConfig
from sbi_lite.density import build
from sbi_lite.train import train

from _markdown import to_markdown

HERE = Path(__file__).parent
ESTIMATORS = {
    "maf": dict(),
    "nsf": dict(),
    "aem": dict(eval_samples=2000),
    "diffusion": dict(),
}
LIM = 4.0
C_SHOW = 0.5  # the context shown in the figure
PARTS = HERE / "results" / "density_2d"


def _rotate(y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    a = c * math.pi / 2
    cos, sin = torch.cos(a), torch.sin(a)
    return torch.stack([cos * y[:, 0] - sin * y[:, 1], sin * y[:, 0] + cos * y[:, 1]], -1)


class Target:
    """A base 2-D density (sample, log_prob), presented rotated by the context."""

    def sample_base(self, n: int, g: torch.Generator) -> torch.Tensor: ...

    def log_prob_base(self, y: torch.Tensor) -> torch.Tensor: ...

    def sample(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """y (n, 2), c (n, 1), and the true log p(y|c) (n,) (from the unrotated draw)."""
        c = 2 * torch.rand(n, generator=g) - 1
        base = self.sample_base(n, g)
        return _rotate(base, c), c[:, None], self.log_prob_base(base)

    def log_prob(self, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.log_prob_base(_rotate(y, -c[:, 0]))


class Ring(Target):
    """Radius N(2.5, 0.2²) (truncation at 0 negligible), uniform angle: p(y) = N(|y|)/(2π|y|)."""

    def sample_base(self, n, g):
        r = 2.5 + 0.2 * torch.randn(n, generator=g)
        phi = 2 * math.pi * torch.rand(n, generator=g)
        return torch.stack([r * torch.cos(phi), r * torch.sin(phi)], -1)

    def log_prob_base(self, y):
        r = y.norm(dim=-1)
        return torch.distributions.Normal(2.5, 0.2).log_prob(r) - torch.log(2 * math.pi * r)


class EightGaussians(Target):
    """Equal mixture of N(μ_k, 0.3²I) with μ_k on a circle of radius 2.5."""

    def __init__(self):
        phi = torch.arange(8) * math.pi / 4
        self.means = 2.5 * torch.stack([torch.cos(phi), torch.sin(phi)], -1)

    def sample_base(self, n, g):
        k = torch.randint(0, 8, (n,), generator=g)
        return self.means[k] + 0.3 * torch.randn(n, 2, generator=g)

    def log_prob_base(self, y):
        comp = torch.distributions.Normal(self.means, 0.3).log_prob(y[:, None]).sum(-1)
        return torch.logsumexp(comp, -1) - math.log(8)


class Checkerboard(Target):
    """Uniform on the 8 dark squares of a 4×4 board over [−2, 2]²: density 1/8 there, 0 elsewhere."""

    def sample_base(self, n, g):
        i, j = torch.randint(0, 4, (n,), generator=g), torch.randint(0, 2, (n,), generator=g)
        j = 2 * j + (i % 2)
        u = torch.rand(n, 2, generator=g)
        return torch.stack([i + u[:, 0], j + u[:, 1]], -1) - 2

    def log_prob_base(self, y):
        inside = (y.abs() < 2).all(-1)
        cell = torch.floor(y + 2).long()
        dark = (cell[:, 0] + cell[:, 1]) % 2 == 0  # the cells sample_base draws: j ≡ i (mod 2)
        return torch.where(inside & dark, torch.tensor(-math.log(8.0)), torch.tensor(-math.inf))


TARGETS = {"ring": Ring(), "eight gaussians": EightGaussians(), "checkerboard": Checkerboard()}


def fit(name: str, target: Target, n_train: int, max_epochs: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y, c, _ = target.sample(n_train, g)
    q = build(name, 2, 1, seed=seed, **ESTIMATORS[name])
    q.fit_standardization(y, c)
    config = TrainConfig(max_epochs=max_epochs, patience=20, ema=q.capabilities.ema)
    t0 = time.perf_counter()
    hist = train(q, q.loss, (y, c), config=config, seed=seed)
    return q, time.perf_counter() - t0, hist.epochs


def evaluate(q, target: Target, n_test: int, seed: int) -> float:
    """Held-out NLL gap E[log p − log q] in nats (≥ 0 up to noise)."""
    y, c, log_p = target.sample(n_test, torch.Generator().manual_seed(seed + 10_000))
    with torch.no_grad():
        return float((log_p - q.log_prob(y, c)).mean())


def grid_density(q, c_value: float, n: int = 80) -> np.ndarray:
    axis = torch.linspace(-LIM, LIM, n)
    yy = torch.cartesian_prod(axis, axis)
    c = torch.full((len(yy), 1), c_value)
    with torch.no_grad():
        lp = torch.cat([q.log_prob(yy[s:s + 1600], c[s:s + 1600]) for s in range(0, len(yy), 1600)])
    return lp.exp().view(n, n).T.numpy()


def run_target(tname: str, args) -> None:
    """Fit every estimator to one target; save its rows and grid images under results/density_2d/."""
    target = TARGETS[tname]
    axis = torch.linspace(-LIM, LIM, 80)
    truth = target.log_prob(torch.cartesian_prod(axis, axis), torch.full((6400, 1), C_SHOW)).exp().view(80, 80).T
    images, rows = {"truth": truth.numpy()}, []
    for name in args.estimators:
        q, seconds, epochs = fit(name, target, args.train, args.max_epochs, args.seed)
        t0 = time.perf_counter()
        gap = evaluate(q, target, args.test, args.seed)
        t_eval = time.perf_counter() - t0
        images[name] = grid_density(q, C_SHOW)
        rows.append({"target": tname, "estimator": name, "NLL gap (nats)": gap, "epochs": epochs,
                     "train s": seconds, f"log_prob s / {args.test:,}": t_eval})
        print(rows[-1], flush=True)
    PARTS.mkdir(parents=True, exist_ok=True)
    stem = tname.replace(" ", "_")
    np.savez(PARTS / f"{stem}.npz", **images)
    pd.DataFrame(rows).to_csv(PARTS / f"{stem}.csv", index=False)


def assemble(args) -> str:
    """Table and figure from the per-target parts on disk."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [t for t in TARGETS if (PARTS / f"{t.replace(' ', '_')}.csv").exists()]
    table = pd.concat([pd.read_csv(PARTS / f"{t.replace(' ', '_')}.csv") for t in names])
    cols = ["truth", *table.estimator.unique()]
    fig, axes = plt.subplots(len(names), len(cols), figsize=(2.2 * len(cols), 2.2 * len(names)), squeeze=False)
    for i, tname in enumerate(names):
        images = np.load(PARTS / f"{tname.replace(' ', '_')}.npz")
        for j, col in enumerate(cols):
            ax = axes[i, j]
            ax.imshow(images[col], origin="lower", extent=(-LIM, LIM, -LIM, LIM), cmap="viridis")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(col)
            if j == 0:
                ax.set_ylabel(tname)
    fig.suptitle(f"q(y | c = {C_SHOW}) after {args.train:,} training pairs")
    fig.tight_layout()
    fig.savefig(HERE / "results" / "density_2d.png", dpi=110)
    text = ("# Two-dimensional conditional densities\n\n"
            f"Command: `.venv/bin/python benchmarks/density_2d.py` ({args.train:,} training and {args.test:,} "
            f"test pairs per target, at most {args.max_epochs} epochs with patience 20, seed 0, one torch "
            "thread; diffusion with its EMA). `--targets ring` fits one target (parts are kept in "
            "`results/density_2d/`), `--assemble` rebuilds this page from the parts.\n"
            "NLL gap: held-out E[log p(y|c) − log q(y|c)] in nats against the exact density (0 = perfect). "
            "Figure: `results/density_2d.png`.\n\n" + to_markdown(table, ",.3f") + "\n")
    (HERE / "results" / "density_2d.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--max-epochs", type=int, default=150)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--estimators", nargs="*", default=list(ESTIMATORS))
    parser.add_argument("--targets", nargs="*", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--assemble", action="store_true", help="only rebuild the table and figure")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.assemble:
        for tname in args.targets:
            run_target(tname, args)
    print(assemble(args))


if __name__ == "__main__":
    main()
