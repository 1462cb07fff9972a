# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: all run test test-deps lint bench install dev clean

all: lint test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

run: $(VENV)/.installed
	$(BIN)/intake run

# What the tests need beyond Python: a Dovecot for the IMAP tests, Debian's chromium and
# axe-core for the web form's browser tests (the browser is never downloaded).
test-deps:
	@command -v dovecot >/dev/null || [ -x /usr/sbin/dovecot ] || $(call apt,dovecot-imapd)
	@[ -x /usr/bin/chromium ] || $(call apt,chromium)
	@[ -f node_modules/axe-core/axe.min.js ] || npm ci --no-audit --no-fund

define apt
{ [ "$$(id -u)" = 0 ] || { echo "make test needs $(1): run 'sudo apt-get install $(1)'"; exit 1; }; \
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; }
endef

test: $(VENV)/.dev-installed test-deps
	$(BIN)/pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(VENV)/.dev-installed
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) intake-data .mypy_cache .ruff_cache .pytest_cache
