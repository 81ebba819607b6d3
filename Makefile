# smemu: `make run` starts the emulator, `make test` runs the test suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# PyTorch; override for another version or build, e.g. TORCH_SPEC="torch==2.5.1".
TORCH_SPEC ?= torch==2.13.0
# PyTorch's own index of CPU builds (PyPI's Linux x86_64 wheel is the CUDA build, with GBs of GPU libraries).
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
PIP := $(BIN)/python -m pip install --disable-pip-version-check

.PHONY: run test bench bench-floor bench-tools venv sdk-venv clean

venv: $(VENV)/.installed

# Install $(TORCH_SPEC) with the Python $(1), saying where it came from: a wheel pip finds with no index at
# all (a local wheelhouse, PIP_FIND_LINKS) first, then PyTorch's CPU index, then PyPI.
define install_torch
	@if $(1) -m pip download --disable-pip-version-check --no-deps --no-index -q -d "$$(mktemp -d)" "$(TORCH_SPEC)" \
	    >/dev/null 2>&1; then \
	  echo "==> PyTorch: $(TORCH_SPEC) from a wheel on this machine (no index needed)"; \
	  $(1) -m pip install --disable-pip-version-check "$(TORCH_SPEC)"; \
	elif echo "==> PyTorch: trying the CPU build from $(TORCH_CPU_INDEX)" && \
	    $(1) -m pip install --disable-pip-version-check --index-url $(TORCH_CPU_INDEX) \
	      --extra-index-url https://pypi.org/simple "$(TORCH_SPEC)"; then \
	  echo "==> PyTorch: $(TORCH_SPEC), the CPU build from $(TORCH_CPU_INDEX)"; \
	else \
	  echo "==> PyTorch: $(TORCH_CPU_INDEX) is not reachable; $(TORCH_SPEC) from PyPI instead" \
	       "(on Linux x86_64 that is the CUDA build, several GB)"; \
	  $(1) -m pip install --disable-pip-version-check "$(TORCH_SPEC)"; \
	fi
	@echo "==> PyTorch installed: torch $$($(1) -c 'import torch; print(torch.__version__, "(CUDA " + torch.version.cuda + ")" if torch.version.cuda else "(CPU only)")')"
endef

# The SageMaker Python SDK gets an environment of its own: it brings scikit-learn, which would make
# every XGBoost copy of the emulator's environment import half a second slower. smemu itself goes in
# without its dependencies, so `from emulator import sdk` works there as the README shows.
SDK_VENV := .venv-sdk
sdk-venv: $(SDK_VENV)/.installed

$(SDK_VENV)/.installed: Makefile pyproject.toml
	@echo "==> $(SDK_VENV): the SageMaker Python SDK's environment (a few minutes the first time)"
	$(PYTHON) -m venv $(SDK_VENV)
	$(call install_torch,$(SDK_VENV)/bin/python)
	@echo "==> $(SDK_VENV): XGBoost and the SageMaker Python SDK"
	$(SDK_VENV)/bin/python -m pip install --disable-pip-version-check "xgboost-cpu==3.2.0" "sagemaker==3.27.0"
	$(SDK_VENV)/bin/python -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $@

$(VENV)/.installed: pyproject.toml
	@echo "==> $(VENV): smemu's environment (a few minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) -q --upgrade pip
	$(call install_torch,$(BIN)/python)
	@echo "==> $(VENV): smemu with XGBoost and the test tools"
	$(PIP) -e ".[xgboost,test]"
	touch $@

run: venv
	@echo "==> smemu's commands live in $(BIN): activate it with '. $(BIN)/activate' to type smemu and aws"
	@echo "    (or call $(BIN)/smemu and $(BIN)/aws). Stop the server with Ctrl-C."
	$(BIN)/smemu serve

PYTEST_ARGS ?= -rs
test: venv sdk-venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: venv bench-tools
	$(BIN)/python bench/run_all.py

# The invocation path beside haproxy and two Python floors, one synchronous client, and CPU per request at
# concurrency 32 under wrk: the table alone (make bench gates it).
bench-floor: venv bench-tools
	cd bench && ../$(BIN)/python floor_bench.py

# haproxy (the C floor) and wrk (the concurrency-32 client) from Debian's packages, where root; else their rows
# are skipped, saying so.
bench-tools:
	@missing=""; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "==> installing$$missing for the floor benchmark"; \
	  apt-get install -y -q $$missing >/dev/null 2>&1 || echo "==> could not install$$missing: those rows are skipped"; \
	else echo "==> not root:$$missing not installed, those rows are skipped"; fi

clean:
	rm -rf $(VENV) $(SDK_VENV) .smemu .pytest_cache

# -- serving images -----------------------------------------------------------------------------
TORCH_VERSION := 2.13.0
XGBOOST_VERSION := 3.2.0
PYTORCH_IMAGE := smemu/pytorch-inference:$(TORCH_VERSION)-cpu
XGBOOST_IMAGE := smemu/xgboost-inference:$(XGBOOST_VERSION)
OFFLINE_BASE := smemu/bookworm-python:offline
IMAGE_WHEELS := "torch==$(TORCH_VERSION)" "xgboost-cpu==$(XGBOOST_VERSION)" numpy uvicorn uvloop httptools

BYOC_IMAGE := smemu-byoc-example:1

.PHONY: images images-offline image-wheels offline-base byoc-image

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

# The bring-your-own-container example's image, built on the offline base (no registry needed).
byoc-image: offline-base
	docker build --build-arg BASE_IMAGE=$(OFFLINE_BASE) -t $(BYOC_IMAGE) examples/byoc
