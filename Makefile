# smemu: `make run` starts the emulator, `make test` runs the test suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A CPU build of PyTorch; override for another build, e.g. TORCH_SPEC="torch==2.5.1".
TORCH_SPEC ?= torch==2.13.0
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q

.PHONY: run test bench venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) "$(TORCH_SPEC)"
	$(PIP) -e ".[xgboost,test]"
	touch $@

run: venv
	$(BIN)/smemu serve

test: venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: venv
	$(BIN)/python bench/endpoint_bench.py
	$(BIN)/python bench/placement_bench.py
	$(BIN)/python bench/cold_start_bench.py

clean:
	rm -rf $(VENV) .smemu .pytest_cache
