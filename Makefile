# Fresh machine: Python 3.10+ and make.  `make demo` and `make test` do everything.
PYTHON ?= python3
VENV ?= .venv
# CPU build by default; a GPU user overrides, e.g. make test TORCH_SPEC="torch==2.13.0 --index-url ..."
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out
DATA ?= sample_data

.PHONY: install demo test lab bench clean

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

clean:
	rm -rf $(OUT)
