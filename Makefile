# The two commands: `make demo` and `make test`. Both set up .venv first when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev

.PHONY: setup mosquitto haproxy chromium broker demo test lint typecheck pytest clean

setup: $(VENV)/.installed mosquitto haproxy chromium

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	@touch $@

# Mosquitto, the MQTT broker of `tierwise up --protocol mqtt` and the MQTT tests: installed
# (Debian/Ubuntu) only when missing; elsewhere see https://mosquitto.org/download/.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
MOSQUITTO := $(shell command -v mosquitto 2>/dev/null || ls /usr/sbin/mosquitto 2>/dev/null)
mosquitto:
	@if [ -z "$(MOSQUITTO)" ]; then \
		echo "installing mosquitto (MQTT broker for tierwise up --protocol mqtt and the tests)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq mosquitto mosquitto-clients \
			|| { echo "install Mosquitto: https://mosquitto.org/download/"; exit 1; }; \
	fi

# HAProxy, the load balancer of `tierwise up --cloud-replicas N` and its tests (docs/up.md says
# why HAProxy): installed the same way, only when missing.
HAPROXY := $(shell command -v haproxy 2>/dev/null || ls /usr/sbin/haproxy 2>/dev/null)
haproxy:
	@if [ -z "$(HAPROXY)" ]; then \
		echo "installing haproxy (load balancer for tierwise up --cloud-replicas)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq haproxy \
			|| { echo "install HAProxy: https://www.haproxy.org/"; exit 1; }; \
	fi

# Chromium, the browser the dashboard's tests drive through Playwright (tests/cloud/dashboard;
# CI=true fails them without it): the system package, installed (Debian) only when missing.
CHROMIUM := $(shell ls /usr/bin/chromium 2>/dev/null)
chromium:
	@if [ -z "$(CHROMIUM)" ]; then \
		echo "installing chromium (the browser of the dashboard tests)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium \
			|| { echo "install Chromium as /usr/bin/chromium (Debian: apt-get install chromium)"; exit 1; }; \
	fi

# The MQTT tests expect a broker on 127.0.0.1:1883 (CI=true fails them without one): start
# Mosquitto there, in the background, unless something already listens.
broker: mosquitto
	@$(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 1883), 1)" \
		2>/dev/null || $$(command -v mosquitto || echo /usr/sbin/mosquitto) -d -p 1883

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

pytest: setup broker
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
