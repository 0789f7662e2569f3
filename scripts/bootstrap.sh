#!/usr/bin/env bash
# Install everything the project needs into the project folder: a Python 3.11 virtual
# environment (.venv) with dev-requirements.txt, the infra tools' environment (.venv-tools) with
# tools-requirements.txt, and Azurite from package-lock.json (npm ci).
# Re-running is cheap: each step is skipped while its inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python_bin=$candidate; break
  fi
done
[ -n "$python_bin" ] || { echo "bootstrap: Python 3.11 is required (azure-functions 1.26 is the line for 3.11)" >&2; exit 1; }

stamp() { cat "$@" | sha256sum | cut -c1-16; }

if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
want=$(stamp requirements.txt dev-requirements.txt pyproject.toml)
if [ "$(cat .venv/.installed 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r dev-requirements.txt
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .  # the `jobs` command
  echo "$want" > .venv/.installed
fi

# The infra checks' tools (checkov, pycep-parser; tests/infra) in their own environment: checkov
# pins packages the app pins differently. About 45 s the first time, skipped after that.
if [ ! -x .venv-tools/bin/python ]; then
  "$python_bin" -m venv .venv-tools
fi
want=$(stamp tools-requirements.txt)
if [ "$(cat .venv-tools/.installed 2>/dev/null)" != "$want" ]; then
  .venv-tools/bin/python -m pip install --quiet --disable-pip-version-check -r tools-requirements.txt
  echo "$want" > .venv-tools/.installed
fi

command -v npm >/dev/null 2>&1 || { echo "bootstrap: Node.js 20 with npm is required (for Azurite)" >&2; exit 1; }
want=$(stamp package.json package-lock.json)
if [ ! -x node_modules/.bin/azurite ] || [ "$(cat node_modules/.installed 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.installed
fi
