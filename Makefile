# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS ?= constraints/cpu.txt
PYTEST_ARGS ?=
# pytest-xdist processes, one torch thread each (tests/conftest.py); PYTEST_WORKERS=0 runs in this process
PYTEST_WORKERS ?= auto

.PHONY: demo test bench paper-grid paper-pilot clean

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(PY) benchmarks/demo.py demo

# the side-by-side benchmarks need the `sbi` package (the [bench] extra, pinned), CPU torch kept
$(VENV)/.bench: $(VENV)/.installed
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench
	$(PY) benchmarks/vs_sbi.py --compare snpe sre_sbi_defaults snl --obs 0 1 2 --seeds 0 1 2

# the paper's experiments (benchmarks/paper_grid.py): resumable, so run it again to continue
EXPERIMENT ?= paper
JOBS ?= 2
GRID_OUT ?= benchmarks/results/paper_grid
GRID_ARGS ?=
FINDINGS_ARGS ?=
paper-grid: $(VENV)/.installed
	$(PY) benchmarks/paper_grid.py --experiment $(EXPERIMENT) --jobs $(JOBS) --out $(GRID_OUT) $(GRID_ARGS)
	$(PY) benchmarks/paper_figures.py --out $(GRID_OUT)
	$(PY) benchmarks/paper_findings.py --out $(GRID_OUT) $(FINDINGS_ARGS)

# a reduced pilot of the same grid (benchmarks/RESULTS.md): 6 rounds x 500, 20 epochs a round, 4 seeds
paper-pilot:
	$(MAKE) paper-grid GRID_OUT=benchmarks/results/paper_pilot FINDINGS_ARGS="--last 3" \
		GRID_ARGS="--rounds 6 --simulations 500 --max-epochs 20 --seeds 0 1 2 3"

test: $(VENV)/.installed
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
