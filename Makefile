# Two commands for a fresh machine (see README):
#   make demo   installs into .venv and runs the main job on the embedded default store
#   make test   installs into .venv and runs the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO := demo-out
PLUGINS := plugins/datasets plugins/gpu_cuda plugins/tpu_xla plugins/fpga_dpu plugins/wandb_tracker
# the datasets plugin with its FFCV extra: the ImageNet tests read real FFCV files
PIP_PLUGINS := $(patsubst plugins/datasets,'plugins/datasets[ffcv]',$(PLUGINS))

# torch is pinned on the same pip line as everything else: a CPU build lies on this
# kind of machine, and any looser request would pull a multi-GB CUDA build.
TORCH := torch==2.13.0

# torch_xla is binary-tied to one torch build, so the tpu plugin's real tests run in their
# own environment: torch and torch-xla pinned together on one pip line.
XLA_VENV ?= .venv-xla
TORCH_XLA := torch==2.9.0 torch-xla==2.9.0

.PHONY: install demo test test-xla clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS)) scripts/apt-packages.txt
	bash scripts/install-system.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet "$(TORCH)" -e '.[test]' $(addprefix -e ,$(PIP_PLUGINS))
	touch $@

demo: install
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BIN)/anbench --store $(DEMO)/anbench.db train --dataset synthetic -n 3 --seed 1 --epochs 2
	$(BIN)/anbench --store $(DEMO)/anbench.db measure --device cpu --from-store --batch-size 8 --repeats 3 --batches 2
	$(BIN)/anbench --store $(DEMO)/anbench.db results
	$(BIN)/anbench --store $(DEMO)/anbench.db export --format anb-json --dataset synthetic --out $(DEMO)/anb
	$(BIN)/anbench --store $(DEMO)/anbench.db export --format csv --dataset synthetic --out $(DEMO)/csv
	@echo "demo records: $$(ls $(DEMO)/anb/result_*.json | wc -l) ANB JSON files in $(DEMO)/anb, CSV in $(DEMO)/csv"

# pytest exits 5 when it collects nothing: that must fail, like any failing test.
test: install
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

$(XLA_VENV)/.installed: pyproject.toml plugins/tpu_xla/pyproject.toml scripts/apt-packages.txt
	bash scripts/install-system.sh
	$(PYTHON) -m venv $(XLA_VENV)
	$(XLA_VENV)/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	$(XLA_VENV)/bin/python -m pip install --quiet $(TORCH_XLA) -e . -e plugins/tpu_xla pytest
	touch $@

# the tpu plugin's tests against the real torch_xla on PJRT's CPU device
test-xla: $(XLA_VENV)/.installed
	PJRT_DEVICE=CPU $(XLA_VENV)/bin/python -m pytest -p no:cacheprovider plugins/tpu_xla/tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) $(XLA_VENV) $(DEMO) anbench.db anbench.db-wal anbench.db-shm
