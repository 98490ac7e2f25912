# Zonnewijk: `make demo` runs the demo, `make test` runs every check, `make bench` every
# benchmark against its goals (about 20 minutes; writes bench/results/latest.json and the
# figure tables in docs/). All work on a fresh Debian machine as root: they install Debian's
# packages and a virtual environment as needed.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_ARGS ?=
PYTEST_ARGS ?=
SYSTEM_PACKAGES := mosquitto influxdb socat faketime chromium poppler-utils fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0

.PHONY: demo test bench lint typecheck pytest system-deps venv clean deb

demo: system-deps $(STAMP)
	$(VENV)/bin/zonnewijk demo $(DEMO_ARGS)

test: system-deps $(STAMP) lint typecheck pytest

bench: system-deps $(STAMP)
	$(PY) bench/_suite.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check collector gateway_firmware zonnewijk_wire tests bench
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Debian packages the tests and the demo run for real; installed only when missing.
system-deps:
	@missing=""; \
	for pkg in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$pkg"; \
	done; \
	python3 -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root, or install:$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[gateway,server,dev]'
	touch $(STAMP)

# The gateway's Debian package for this machine's architecture, reproducibly (dist/*.deb);
# VERSION=0.2.0-1 sets its version (default: pyproject's + "-1"). docs/gateway-fleet.md.
deb:
	packaging/build-deb.sh dist

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
