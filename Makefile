# smemu: `make run` starts the emulator, `make test` runs the test suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A CPU build of PyTorch; override for another build, e.g. TORCH_SPEC="torch==2.5.1".
TORCH_SPEC ?= torch==2.13.0
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q

.PHONY: run test bench venv sdk-venv clean

venv: $(VENV)/.installed

# The SageMaker Python SDK gets an environment of its own: it brings scikit-learn, which would make
# every XGBoost copy of the emulator's environment import half a second slower.
SDK_VENV := .venv-sdk
sdk-venv: $(SDK_VENV)/.installed

$(SDK_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install --disable-pip-version-check -q "$(TORCH_SPEC)" "xgboost-cpu==3.2.0" "sagemaker==3.27.0"
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) "$(TORCH_SPEC)"
	$(PIP) -e ".[xgboost,test]"
	touch $@

run: venv
	$(BIN)/smemu serve

PYTEST_ARGS ?= -rs
test: venv sdk-venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: venv
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(SDK_VENV) .smemu .pytest_cache

# -- serving images -----------------------------------------------------------------------------
TORCH_VERSION := 2.13.0
XGBOOST_VERSION := 3.2.0
PYTORCH_IMAGE := smemu/pytorch-inference:$(TORCH_VERSION)-cpu
XGBOOST_IMAGE := smemu/xgboost-inference:$(XGBOOST_VERSION)
OFFLINE_BASE := smemu/bookworm-python:offline
IMAGE_WHEELS := "torch==$(TORCH_VERSION)" "xgboost-cpu==$(XGBOOST_VERSION)" numpy uvicorn uvloop httptools

.PHONY: images images-offline image-wheels offline-base

# With a registry: FROM python:3.11-slim, packages from PyPI.
images:
	docker build -f containers/pytorch/Dockerfile --build-arg TORCH_VERSION=$(TORCH_VERSION) -t $(PYTORCH_IMAGE) .
	docker build -f containers/xgboost/Dockerfile --build-arg XGBOOST_VERSION=$(XGBOOST_VERSION) -t $(XGBOOST_IMAGE) .

# With no registry at all: a Debian base made by debootstrap and `docker import`, and wheels
# fetched on the host with `pip download` into the build context.
images-offline: venv offline-base image-wheels
	docker build -f containers/pytorch/Dockerfile --build-arg BASE_IMAGE=$(OFFLINE_BASE) \
	  --build-arg PIP_OPTIONS="--no-index --find-links /tmp/wheels" --build-arg TORCH_VERSION=$(TORCH_VERSION) -t $(PYTORCH_IMAGE) .
	docker build -f containers/xgboost/Dockerfile --build-arg BASE_IMAGE=$(OFFLINE_BASE) \
	  --build-arg PIP_OPTIONS="--no-index --find-links /tmp/wheels" --build-arg XGBOOST_VERSION=$(XGBOOST_VERSION) -t $(XGBOOST_IMAGE) .

image-wheels: venv
	$(BIN)/python -m pip download --disable-pip-version-check -q --dest containers/wheels $(IMAGE_WHEELS)

offline-base:
	@if docker image inspect $(OFFLINE_BASE) >/dev/null 2>&1; then echo "$(OFFLINE_BASE) exists"; else \
	  rootfs=$$(mktemp -d) && \
	  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm $$rootfs && \
	  tar -C $$rootfs -c . | docker import - $(OFFLINE_BASE) && rm -rf $$rootfs; fi
