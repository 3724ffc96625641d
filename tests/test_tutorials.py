"""Every notebook in ``tutorials/`` runs top to bottom without an error.

The notebooks assert their own teaching claims (a posterior covering θ*, a diagnosis that
catches an under-trained network, a leakage-free acceptance of 1.0, ...), so an assertion that
stops holding fails here with the cell and the traceback. Each runs in a fresh kernel of this
interpreter, in ``tutorials/``, with this checkout first on the path and one torch/BLAS thread
(each takes 1–3 min on one core, by the machine).
"""

import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell


def test_the_tutorials_are_there():
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_diagnostics.ipynb",
                                           "03_choosing_a_method.ipynb", "04_density_zoo.ipynb"]


@pytest.mark.slow
@pytest.mark.longest
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    # the kernel inherits this environment: this checkout's sbi_lite and simulators, one thread
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    monkeypatch.setenv("MKL_NUM_THREADS", os.environ.get("MKL_NUM_THREADS", "1"))
    nb = nbformat.read(path, as_version=4)
    # "python3" is started with this interpreter (jupyter_client swaps "python" for sys.executable)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(TUTORIALS)}})
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the failing cell and its traceback
    seconds = time.perf_counter() - t0
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                  for o in c.get("outputs", []))
    assert figures >= 1, f"{path.name} showed no figure inline"
    print(f"{path.name}: {seconds:.0f} s, {figures} figures ({sys.executable})")


def test_plots_keep_the_backend_a_notebook_chose():
    """``sbi_lite.plot`` uses Agg only when no backend was chosen: in Jupyter (MPLBACKEND=inline)
    it must not switch away, or no figure would show."""
    import subprocess

    code = ("import numpy as np, matplotlib; from sbi_lite.plot import pairplot; "
            "pairplot(np.zeros((10, 2))); print(matplotlib.get_backend())")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "svg"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"
    env.pop("MPLBACKEND")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().lower() == "agg"
