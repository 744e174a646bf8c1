# Entry points for people and CI. `make demo` and `make test` work on a fresh Debian machine:
# both run scripts/setup.sh first, which installs only what is missing (the demo only what it needs: no
# compiler, no LLVM, no Kbuild tools).

VENV := .venv
PY := $(VENV)/bin/python
EV := $(VENV)/bin/entry-verify

# The demo: prove the bundled subjects in asm/ (one keeps every obligation, one has a classic mistake).
DEMO_CMD ?= $(EV) prove
PYTEST_ARGS ?=

.PHONY: setup setup-demo demo test lint bench results

setup:
	bash scripts/setup.sh test

setup-demo:
	bash scripts/setup.sh demo

# Exit status 1 means a violation was found: expected here, since asm/entry-bad.s carries its mistake.
demo: setup-demo
	@$(DEMO_CMD) || [ $$? -eq 1 ]

# ruff, mypy on the package ([tool.mypy] in pyproject.toml), and the layers contract in pyproject.toml (lower
# layers never import higher ones, no cycles).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# pytest exits 5 when it collected nothing; say so, since a green run without tests proves nothing.
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	@rc=0; PYTHONHASHSEED=0 $(PY) -m pytest -q --durations=25 $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5); failing" >&2; fi; \
	exit $$rc

bench: setup
	@set -e; found=0; for f in bench/*.py; do \
		[ -e "$$f" ] || continue; found=1; echo "== $$f" >&2; $(PY) "$$f"; \
	done; [ $$found -eq 1 ] || echo "make bench: no bench/*.py yet" >&2

# Regenerate the verdict tables in proofs/results/ (both Debian trees under the proposed 2020 policy).
results: setup
	$(PY) scripts/results.py
