# The two commands a newcomer needs: `make demo` and `make test`. Both set up whatever
# is missing first (scripts/bootstrap), so they work on a fresh machine.
.PHONY: setup demo test unit lint down

setup:
	scripts/bootstrap

demo: setup
	scripts/demo

down:
	.venv/bin/canary devenv down

test: setup
	.venv/bin/pytest

unit: setup
	.venv/bin/pytest tests/unit

lint: setup
	.venv/bin/ruff check canary tests benchmarks
	.venv/bin/mypy
	.venv/bin/lint-imports
