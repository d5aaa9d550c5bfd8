# Two commands: `make demo` and `make test`. Both create .venv on a fresh machine, install
# torch==2.13.0 (the local CPU build) first, then everything else under constraints.txt so no
# later install can swap torch for a multi-gigabyte CUDA build. Re-running skips the install
# while pyproject.toml and constraints.txt are unchanged.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup system-packages demo test test-slow lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "ethos needs Python 3.11, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/ethos demo

# Debian packages some tests need (a real PostgreSQL server for the ledger). Installs as root;
# elsewhere it says what to run, and those tests skip (CI=true makes them fail instead).
SYSTEM_PACKAGES := postgresql chromium
system-packages:
	@bash scripts/install-system-packages.sh $(SYSTEM_PACKAGES) || echo "warning: system packages missing; some tests will skip"

# pytest exits 5 when it collected nothing; that is a failure of the suite's wiring, not a pass,
# so it is reported as such instead of being silently treated as success.
test: setup system-packages lint
	$(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

test-slow: setup system-packages
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check --no-cache src tests benchmarks
	$(BIN)/ruff format --check --no-cache src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) runs build dist .pytest_cache .mypy_cache .ruff_cache
