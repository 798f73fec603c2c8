# The two commands: `make demo` and `make test`. Both set up .venv first when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev

.PHONY: setup demo test lint typecheck pytest clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	@touch $@

# The plans of every example, then the factory's continuum for real for a minute — cloud, a
# WAN proxy and an edge agent per plant, devices streaming — with a 20 s WAN outage in the
# middle, ending with the plan-vs-measured table (docs/up.md).
DEMO_DURATION ?= 60s
demo: setup
	@for spec in examples/*.yaml; do \
		echo; echo "=== tierwise plan $$spec"; \
		$(BIN)/tierwise plan $$spec --no-alternatives || exit $$?; \
	done
	@echo; echo "=== tierwise up examples/factory.yaml --duration $(DEMO_DURATION) --wan spec,outage=20s@20s"
	@mkdir -p build
	$(BIN)/tierwise up examples/factory.yaml --duration $(DEMO_DURATION) \
		--wan spec,outage=20s@20s --out build/demo-run.json

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
