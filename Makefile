# The two commands a newcomer needs: `make demo` and `make test`. Both set up whatever
# is missing first (scripts/bootstrap), so they work on a fresh machine.
.PHONY: setup demo test unit faults lint down

setup:
	scripts/bootstrap

demo: setup
	scripts/demo

down:
	.venv/bin/canary devenv down

# The 25 slowest tests are listed at the end: what to look at when CI gets slower.
test: setup
	.venv/bin/pytest --durations=25

unit: setup
	.venv/bin/pytest tests/unit

# The fault tier at full length (`make test` runs one round of each fault); see
# tests/faults/README.md. CANARY_FAULT_ROUNDS, CANARY_FUZZ_EXAMPLES and CANARY_FAULT_SEED
# may be overridden.
CANARY_FAULT_ROUNDS ?= 20
CANARY_FUZZ_EXAMPLES ?= 500
faults: setup
	CANARY_FAULT_ROUNDS=$(CANARY_FAULT_ROUNDS) CANARY_FUZZ_EXAMPLES=$(CANARY_FUZZ_EXAMPLES) \
		.venv/bin/pytest tests/faults -rP

lint: setup
	.venv/bin/ruff check canary tests benchmarks
	.venv/bin/mypy
	.venv/bin/lint-imports
