# Fresh machine: Python 3.10+ and make.  `make demo` and `make test` do everything.
PYTHON ?= python3
VENV ?= .venv
# CPU build by default; a GPU user overrides, e.g. make test TORCH_SPEC="torch==2.13.0 --index-url ..."
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out
DATA ?= sample_data

.PHONY: install demo test lab bench bench-scale clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[notebooks,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m gmmplat demo --data $(DATA) --out $(OUT)

test: install
	$(PY) -m pytest -q

# containers run as root, where jupyter refuses to start without --allow-root
lab: install
	$(VENV)/bin/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: install
	$(PY) benchmarks/bench_projector.py

# the large C4 tetramer (box 256, not part of the demo) and the scale benchmark's quick grid
bench-scale: install
	$(PY) -m gmmplat simulate tetramer --out $(DATA) --n-particles 512
	PYTHONPATH=. $(PY) benchmarks/bench_scale.py --quick --out $(OUT)/bench_scale.jsonl

clean:
	rm -rf $(OUT)
