#!/usr/bin/env bash
# The whole test suite: install what is missing, lint and type-check, then pytest. The tests
# start (and stop) their own Azurite on free ports, so nothing needs to be running first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy shared jobs devhost client chaos function_app.py
echo "== import contracts"; .venv/bin/lint-imports
echo "== pytest"; .venv/bin/python -m pytest "$@"
