# The two commands of the README's Quick start, and their parts.
.PHONY: run test install lint bench chaos

run:      ## run the app locally: Azurite + devhost on http://127.0.0.1:7071
	scripts/run.sh

test:     ## the whole test suite: install, lint, type-check, pytest (starts its own Azurite)
	scripts/test.sh

install:  ## create .venv and install Python and npm dependencies
	scripts/bootstrap.sh

lint:
	scripts/bootstrap.sh && .venv/bin/ruff check . && .venv/bin/mypy shared jobs devhost client chaos function_app.py && .venv/bin/lint-imports

bench:    ## the whole benchmark: app vs floor (in-process and through devhost), vs Celery, crash probe; prints ratios
	scripts/bench.sh $(BENCH_ARGS)

chaos:    ## seeded fault injection against devhost and Azurite (kills, restarts, a fault proxy); prints one line of counts
	scripts/bootstrap.sh && .venv/bin/python -m chaos $(CHAOS_ARGS)
