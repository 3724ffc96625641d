"""The layering of ARCHITECTURE.md, checked by walking every import with ``ast``."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module (relative to sbi_lite/, without .py) -> layer. Directories map all their modules.
LAYERS = {
    "seeding": -1, "checks": -1, "devices": -1, "nn": 0, "density/splines": 0, "priors": 0,
    "density": 1, "ratio": 1, "losses": 1, "simulate": 1, "simulate_backends": 1, "simulate_dask": 1,
    "train": 2, "samplers": 2,
    "posterior": 3, "diagnostics": 3,
    "inference": 4, "api": 4, "io": 4, "plot": 4, "cli": 4, "__init__": 4, "__main__": 4,
}


def layer_of(rel: str) -> int:
    parts = rel.split("/")
    for i in range(len(parts), 0, -1):
        key = "/".join(parts[:i])
        if key in LAYERS:
            return LAYERS[key]
    raise AssertionError(f"sbi_lite/{rel} has no layer in tests/test_architecture.py")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def module_rel(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "sbi_lite":
        return None
    for i in range(len(parts), 1, -1):
        cand = ROOT.joinpath(*parts[:i])
        if cand.with_suffix(".py").exists():
            return "/".join(parts[1:i])
        if (cand / "__init__.py").exists():
            return "/".join(parts[1:i]) + "/__init__"
    return "__init__"


def test_layers_import_only_downwards():
    bad = []
    for path in (ROOT / "sbi_lite").rglob("*.py"):
        rel = path.relative_to(ROOT / "sbi_lite").with_suffix("").as_posix()
        mine = layer_of(rel)
        for name in imports(path):
            if name.startswith("simulators"):
                bad.append(f"{rel} imports {name}: the library never imports simulators/")
            target = module_rel(name)
            if target is None or target == rel:
                continue
            base = target[: -len("/__init__")] if target.endswith("/__init__") else target
            theirs = layer_of(base) if base else 4
            if theirs > mine:
                bad.append(f"{rel} (layer {mine}) imports {name} (layer {theirs})")
    assert not bad, "\n".join(bad)


def test_simulators_use_only_priors_from_the_library():
    for path in (ROOT / "simulators").rglob("*.py"):
        for name in imports(path):
            if name.startswith("sbi_lite"):
                assert name.startswith("sbi_lite.priors"), f"{path.name} imports {name}"


def test_no_module_is_too_long():
    for path in list((ROOT / "sbi_lite").rglob("*.py")) + list((ROOT / "simulators").rglob("*.py")):
        n = len(path.read_text().splitlines())
        assert n <= 400, f"{path.relative_to(ROOT)} has {n} lines"
