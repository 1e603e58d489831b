# The verbs people guess. `make demo` and `make test` set everything up themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.ray-installed
NODE_STAMP := node_modules/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint agents test-python test-extension test-e2e vsix bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# Ray (a large download, cached by pip outside the repository) only for the tests of the Ray
# executor: `make demo` does not need it.
$(RAY_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,ray]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)
	$(VENV)/bin/autoresearch demo $(if $(DIR),--dir $(DIR)) $(if $(N),--loop $(N))

lint: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/ruff check server tests
	$(VENV)/bin/ruff format --check server tests
	npm run --silent typecheck

# The real coding-agent programs the preset tests drive, pinned, in ~/.cache (instant once there).
agents:
	bash tests/agents/install.sh >/dev/null

test-python: $(STAMP) $(RAY_STAMP) agents
	$(PY) -m pytest -q -p no:cacheprovider tests/server

test-extension: $(STAMP) $(NODE_STAMP)
	AUTORESEARCH_PYTHON=$(abspath $(PY)) npm run --silent test:unit

vsix: $(NODE_STAMP)
	npm run --silent package

test-e2e: $(STAMP) vsix
	bash tests/e2e/setup.sh
	AUTORESEARCH_PYTHON=$(abspath $(PY)) node tests/e2e/run.mjs

test: lint test-python test-extension test-e2e

# The VS Code figures (tests/bench/vscode.py) run the end-to-end suite's large-session scenario.
bench: $(STAMP) vsix
	bash tests/e2e/setup.sh
	$(PY) tests/bench/run.py

clean:
	rm -rf $(VENV) node_modules dist *.vsix tests/e2e/screenshots .pytest_cache .ruff_cache
