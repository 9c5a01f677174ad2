# svd-lab: the two commands are `make run` and `make test`; both set up the venv on first use.
#
# torch: by default tools/torch_choice.py picks the build for this machine (a local wheel in pip's find-links; else
# the CUDA build the NVIDIA driver supports; else the CPU build from PyTorch's CPU index, TORCH_CPU_INDEX overrides).
# Given TORCH_SPEC or TORCH_PIP_ARGS, those are used as they are, e.g.
#   make setup TORCH_SPEC=torch==2.13.0 TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cu126"
PYTHON       ?= python3
VENV         ?= .venv
TORCH_SPEC   ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PYTEST_ARGS  ?=
BIN          := $(VENV)/bin
STAMP        := $(VENV)/.svd-lab-installed
# papermill and tqdm: no progress-bar spam in logs.
export TQDM_DISABLE ?= 1
export HF_HUB_DISABLE_PROGRESS_BARS ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: setup run test lab kernel bench regress test-browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if [ "$(origin TORCH_SPEC)" = file ] && [ -z '$(TORCH_PIP_ARGS)' ]; then \
	    args=$$($(BIN)/python tools/torch_choice.py '$(TORCH_SPEC)') || exit 1; \
	else args='$(TORCH_PIP_ARGS)'; fi; \
	echo "$(BIN)/python -m pip install -q $$args $(TORCH_SPEC)"; \
	$(BIN)/python -m pip install -q $$args "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,train]"
	$(BIN)/svd-lab kernel install --sys-prefix
	touch $@

kernel: $(STAMP)
	$(BIN)/svd-lab kernel install --sys-prefix

# The main job: check the machine, then execute the whole course (tiny/mini profiles on a CPU).
# `make run EDITION=zh-CN` executes the Simplified Chinese notebooks instead (the same code).
EDITION ?= en
run: $(STAMP)
	$(BIN)/svd-lab doctor
	$(BIN)/svd-lab course run --edition $(EDITION)

# Regression runs: execute the course, compare what the notebooks record with tests/baselines/ and print a table.
# `make regress UPDATE=1` rewrites the baselines from this run instead (review the diff of tests/baselines/).
regress: $(STAMP)
	$(BIN)/svd-lab course regress $(if $(filter-out 0,$(UPDATE)),--update)

test: $(STAMP)
	$(BIN)/python -m pytest --junitxml=outputs/test-report.xml $(PYTEST_ARGS)

# The course in a real browser (issue 10): Debian's chromium is installed when missing (apt-get; where that is
# impossible -- no apt-get, not root, no network -- the tests skip and say why), then JupyterLab runs every
# notebook through its UI in headless chromium. Screenshots and reports: outputs/browser/. `make test` runs the
# same tests (marker "browser"); deselect them there with PYTEST_ARGS='-m "not browser"'.
test-browser: $(STAMP)
	sh tests/browser/ensure_chromium.sh || test $$? -eq 3
	$(BIN)/python -m pytest -m browser tests/browser $(PYTEST_ARGS)

# JupyterLab on the course; the notebooks name the "Python (svd-lab)" kernel, installed in the venv by setup.
lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) outputs build .pytest_cache src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
