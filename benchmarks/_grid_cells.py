"""The cells of the paper grid (task × method × estimator × K × seed × rounds × …) and the
named experiments that expand to them. No running here: ``paper_grid.py`` runs cells.

A cell's ``id`` names every setting that changes its results, so two experiments asking for the
same configuration share one cell (SNPE-C + MAF, K = 100 is in fig1, fig2, fig3 and a3).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass

__all__ = ["Cell", "TASKS", "PAPER_BUDGET", "EXPERIMENTS", "ALIASES", "grid_cells", "experiment_cells",
           "cell_in_arm"]

TASKS = ("nonlinear_gaussian", "lotka_volterra", "mg1")
# rounds × simulations per round, the paper's
PAPER_BUDGET = {"nonlinear_gaussian": (25, 1000), "lotka_volterra": (20, 1000), "mg1": (25, 1000)}
METHODS = ("snpe", "sre", "snl")
SAMPLE_WITH = ("rejection", "mcmc", "auto")
# estimators without an exact, cheap log-density: SNPE-C trains them on truncated-prior proposals
# (K does not apply), SNL refuses them, and MCMC on their density is refused
NOT_EXACT = ("aem", "diffusion")
BOX_ESTIMATORS = ("nsf", "nsf_ar")  # the ones with a variant supported on the prior's box
# tasks whose prior is a box: M/G/1's is a box in (θ1, θ2 − θ1, θ3), not in θ, which infer's
# leakage-free estimator refuses ("leakage_free needs a box prior")
BOX_PRIOR_TASKS = ("nonlinear_gaussian", "lotka_volterra")


@dataclass(frozen=True)
class Cell:
    """One run of ``infer``: a configuration and a seed.

    ``estimator`` is "classifier" for SRE; ``num_atoms`` (K) is None where it does not apply (SNL,
    SNPE-C with a non-exact estimator); ``sample_with`` is "rejection" (i.i.d.) or "mcmc" for SNPE-C
    and "auto" otherwise; ``leakage_free`` only for SNPE-C with an NSF.
    """

    task: str
    method: str
    estimator: str
    num_atoms: int | None
    seed: int
    rounds: int
    simulations: int
    sample_with: str = "auto"
    leakage_free: bool = False
    preset: str = "paper"

    @property
    def id(self) -> str:
        k = "-" if self.num_atoms is None else str(self.num_atoms)
        box = "-box" if self.leakage_free else ""
        return (f"{self.task}_{self.method}-{self.estimator}{box}_k{k}_{self.sample_with}_{self.preset}"
                f"_r{self.rounds}x{self.simulations}_s{self.seed}")

    @property
    def arm(self) -> str:
        """The configuration without task, seed and budget: one line of a figure's legend."""
        name = {"snpe": "SNPE-C", "sre": "SRE", "snl": "SNL"}[self.method]
        parts = [name] + ([] if self.method == "sre" else [self.estimator.upper() + (" (box)" if self.leakage_free else "")])
        parts += [] if self.num_atoms is None else [f"K={self.num_atoms}"]
        parts += [self.sample_with] if self.method == "snpe" else []
        return " ".join(parts)

    @classmethod
    def from_id(cls, text: str) -> "Cell":
        """The cell an ``id`` names (a failed cell's folder name is all that is left of it).

        Example:
            >>> Cell.from_id("lotka_volterra_snpe-nsf-box_k100_rejection_paper_r6x500_s3").leakage_free
            True
        """
        match = _ID.fullmatch(text)
        if match is None:
            raise ValueError(f"not a cell id: {text!r}")
        g = match.groupdict()
        return cls(g["task"], g["method"], g["estimator"], None if g["k"] == "-" else int(g["k"]), int(g["seed"]),
                   int(g["rounds"]), int(g["simulations"]), g["sample_with"], g["box"] is not None, g["preset"])

    def columns(self) -> dict:
        """The configuration as tidy columns (K as NaN-able float when it does not apply)."""
        cols = asdict(self)
        cols["num_atoms"] = float("nan") if self.num_atoms is None else self.num_atoms
        return {"cell": self.id, "arm": self.arm, **cols}


_ID = re.compile(rf"(?P<task>{'|'.join(TASKS)})_(?P<method>{'|'.join(METHODS)})-(?P<estimator>[a-z_]+?)"
                 rf"(?P<box>-box)?_k(?P<k>\d+|-)_(?P<sample_with>{'|'.join(SAMPLE_WITH)})_(?P<preset>[a-z0-9_]+?)"
                 r"_r(?P<rounds>\d+)x(?P<simulations>\d+)_s(?P<seed>\d+)")


def _normalised(task: str, method: str, estimator: str, k: int, seed: int, rounds: int | None,
                simulations: int | None, sample_with: str, leakage_free: bool, preset: str) -> Cell | None:
    """The cell these settings mean, with settings that do not apply reset; None if infer refuses it."""
    if task not in PAPER_BUDGET:
        raise ValueError(f"unknown task {task!r}; choose from {list(PAPER_BUDGET)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {list(METHODS)}")
    if sample_with not in SAMPLE_WITH:
        raise ValueError(f"unknown sample_with {sample_with!r}; choose from {list(SAMPLE_WITH)}")
    paper_rounds, paper_sims = PAPER_BUDGET[task]
    rounds, simulations = rounds or paper_rounds, simulations or paper_sims
    if method == "sre":
        estimator = "classifier"
    if method != "snpe":
        sample_with, leakage_free = "auto", False
    if method == "snl" or (method == "snpe" and estimator in NOT_EXACT):
        k = None
    if leakage_free and (estimator not in BOX_ESTIMATORS or task not in BOX_PRIOR_TASKS):
        return None
    if method == "snl" and estimator in NOT_EXACT:
        return None
    if sample_with == "mcmc" and estimator == "diffusion":
        return None
    return Cell(task, method, estimator, k, seed, rounds, simulations, sample_with, leakage_free, preset)


def grid_cells(tasks, methods, estimators, ks, seeds, *, rounds: int | None = None, simulations: int | None = None,
               sample_with=("rejection",), leakage_free=(False,), preset: str = "paper") -> list[Cell]:
    """Every valid cell of the product of the axes, in order, without duplicates.

    Settings that do not apply to a method are reset (SRE has no estimator; SNL no K; only SNPE-C
    has ``sample_with`` and ``leakage_free``), and combinations ``infer`` refuses (SNL with AEM or
    diffusion, a leakage-free estimator other than an NSF, MCMC on a diffusion model) are left out.
    Leakage-free cells exist only for the box-prior tasks (not M/G/1).
    ``rounds`` / ``simulations`` None: the paper's budget for each task.

    Example:
        >>> [c.id for c in grid_cells(["mg1"], ["sre", "snl"], ["maf", "aem"], [2], [0], rounds=2, simulations=200)]
        ['mg1_sre-classifier_k2_auto_paper_r2x200_s0', 'mg1_snl-maf_k-_auto_paper_r2x200_s0']
    """
    cells = []
    for task, method, estimator, k, seed, sw, lf in itertools.product(tasks, methods, estimators, ks, seeds,
                                                                     sample_with, leakage_free):
        cell = _normalised(task, method, estimator, k, seed, rounds, simulations, sw, lf, preset)
        if cell is not None and cell not in cells:
            cells.append(cell)
    return cells


# Each experiment is a list of arms (partial cells), crossed with tasks and seeds.
_SNPE_MAF = dict(method="snpe", estimator="maf", k=100, sample_with="rejection")
EXPERIMENTS: dict[str, list[dict]] = {
    # larger K is better: K ∈ {2, 50, 100} for SNPE-C and SRE
    "fig1": [dict(_SNPE_MAF, k=k) for k in (2, 50, 100)] + [dict(method="sre", estimator="-", k=k) for k in (2, 50, 100)],
    # SNPE-C's rejection acceptance per round: the paper's MAF vs an NSF supported on the prior's box
    "fig2": [_SNPE_MAF, dict(_SNPE_MAF, estimator="nsf", leakage_free=True)],
    # SNL beats SRE (SNPE-C alongside)
    "fig3": [dict(method="sre", estimator="-", k=100), dict(method="snl", estimator="maf", k=None), _SNPE_MAF],
    # SNPE-C with slice sampling performs as with i.i.d. (rejection) sampling
    "a3": [_SNPE_MAF, dict(_SNPE_MAF, sample_with="mcmc")],
    # beyond the paper: the zoo's other estimators
    "beyond": [_SNPE_MAF, dict(_SNPE_MAF, estimator="aem"), dict(_SNPE_MAF, estimator="diffusion"),
               dict(method="snl", estimator="nsf", k=None), dict(method="snl", estimator="maf", k=None)],
}
ALIASES = {"paper": ["fig1", "fig2", "fig3", "a3"], "all": [*EXPERIMENTS]}


def _arm_cell(arm: dict, task: str, seed: int, rounds: int | None, simulations: int | None,
              preset: str) -> Cell | None:
    return _normalised(task, arm["method"], arm["estimator"], arm["k"], seed, rounds, simulations,
                       arm.get("sample_with", "auto"), arm.get("leakage_free", False), preset)


def experiment_cells(names, tasks=TASKS, seeds=range(10), *, rounds: int | None = None,
                     simulations: int | None = None, preset: str = "paper") -> list[Cell]:
    """The cells of the named experiments (``EXPERIMENTS`` keys or ``ALIASES``), shared cells once.

    Example:
        >>> len(experiment_cells(["fig1"], seeds=[0]))  # 3 tasks × (3 K for SNPE-C + 3 for SRE)
        18
        >>> len(experiment_cells(["fig1", "fig2", "a3"], tasks=["lotka_volterra"], seeds=[0]))  # + box NSF, + MCMC
        8
    """
    cells = []
    for name in _expand(names):
        for task, seed, arm in itertools.product(tasks, seeds, EXPERIMENTS[name]):
            cell = _arm_cell(arm, task, seed, rounds, simulations, preset)
            if cell is not None and cell not in cells:
                cells.append(cell)
    return cells


def cell_in_arm(cell: dict, name: str) -> bool:
    """Whether a result row's configuration (``Cell.columns``) is one of experiment ``name``'s arms."""
    for arm in EXPERIMENTS[name]:
        want = _arm_cell(arm, cell["task"], int(cell["seed"]), int(cell["rounds"]), int(cell["simulations"]),
                         cell["preset"])
        if want is not None and want.id == cell["cell"]:
            return True
    return False


def _expand(names) -> list[str]:
    out = []
    for name in names:
        if name not in EXPERIMENTS and name not in ALIASES:
            raise ValueError(f"unknown experiment {name!r}; choose from {[*EXPERIMENTS, *ALIASES]}")
        for n in ALIASES.get(name, [name]):
            if n not in out:
                out.append(n)
    return out
