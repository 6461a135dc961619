# The two Quick start commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# axe-core, which the browser tests inject into every page they check (package.json pins it). Without npm
# the tests skip that check and say why; under CI (CI set) they fail instead.
AXE := node_modules/axe-core/axe.min.js

.PHONY: demo test screenshots check install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(AXE): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund && touch $(AXE); \
	else echo "npm is not installed: the browser tests will not run axe-core (apt-get install npm)"; fi

install: $(STAMP) $(AXE)

demo: $(STAMP)
	$(BIN)/python -m lms_stripe_plugin.demo

test: $(STAMP) $(AXE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The browser tests again, writing the README's screenshots into docs/screenshots (`make test` writes none).
screenshots: $(STAMP) $(AXE)
	LMS_STRIPE_SCREENSHOTS=1 $(BIN)/python -m pytest -m browser tests/browser $(PYTEST_ARGS)

# The static checks of .ci/run: types (mypy) and the layering contract (both configured in pyproject.toml).
check: $(STAMP)
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) *.egg-info node_modules
