# Lightfuse developer commands. `make serve` and `make test` are the two the README names.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CLIENTS := .venv-clients

.PHONY: install serve test test-fast test-deploy clients oidc js-clients lint typecheck format bench-ingest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv with Lightfuse and its test tools

$(CLIENTS)/%/.installed: tests/clients/%.txt
	$(PYTHON) -m venv $(CLIENTS)/$*
	$(CLIENTS)/$*/bin/pip install -q -U pip
	$(CLIENTS)/$*/bin/pip install -q -r $<
	touch $@

clients: $(patsubst tests/clients/%.txt,$(CLIENTS)/%/.installed,$(wildcard tests/clients/*.txt))  ## one venv per real client SDK the tests drive

serve: install  ## serve Lightfuse on http://localhost:3000 with the embedded SQLite store
	$(VENV)/bin/lightfuse serve

test: install clients oidc js-clients  ## run every test (SQLite and Postgres backends, real SDK clients)
	$(VENV)/bin/pytest -q

test-fast: install  ## unit tests only
	$(VENV)/bin/pytest -q tests/unit

test-deploy: install clients  ## the Dockerfile (hadolint, build steps replayed) and the Helm chart (render, schemas, checkov)
	$(VENV)/bin/pytest -q tests/deploy

lint: install  ## ruff lint and format check (also run by `make test`: tests/unit/test_static_checks.py)
	$(VENV)/bin/ruff check lightfuse tests bench
	$(VENV)/bin/ruff format --check lightfuse tests bench

typecheck: install  ## mypy on the package ([tool.mypy] in pyproject.toml; also run by `make test`)
	$(VENV)/bin/mypy lightfuse

format: install  ## apply ruff's formatting and import order
	$(VENV)/bin/ruff check --fix --select I lightfuse tests bench
	$(VENV)/bin/ruff format lightfuse tests bench

bench-ingest: install  ## ingestion throughput on the embedded store (see bench/README.md)
	$(PY) bench/ingest_bench.py

clean:
	rm -rf $(VENV) $(CLIENTS) lightfuse-data .pytest_cache

# the real OpenID Provider the SSO tests sign in with (oidc-provider on the machine's node, tests/oidc)
tests/oidc/node_modules/.installed: tests/oidc/package.json tests/oidc/package-lock.json
	cd tests/oidc && npm ci --no-audit --no-fund
	touch $@

oidc: tests/oidc/node_modules/.installed  ## node packages of the test OpenID Provider (npm ci)

# the released Langfuse JS/TS SDKs the tests drive on the machine's node (tests/js, tests/e2e/test_js_sdks.py)
tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund
	touch $@

js-clients: tests/js/node_modules/.installed  ## node packages of the Langfuse JS SDKs (npm ci)
