#!/usr/bin/env bash
# `make bench`: the benchmark's own environment, then `python -m bench "$@"` (see bench/README.md).
# .venv-bench holds dev-requirements.txt plus bench/requirements.txt (Celery 5.7 and kombu 5.7 for
# the comparison); it is separate from .venv because Celery pins python-dateutil, which the test
# environment must not have changed under it. Installed once; re-installed only when one of those
# files changes (stamp .venv-bench/.installed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh  # Azurite (npm) and the project's own environments

python_bin=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python_bin=$candidate; break
  fi
done
[ -n "$python_bin" ] || { echo "bench: Python 3.11 is required" >&2; exit 1; }
if [ ! -x .venv-bench/bin/python ]; then
  "$python_bin" -m venv .venv-bench
fi
want=$(cat requirements.txt dev-requirements.txt bench/requirements.txt | sha256sum | cut -c1-16)
if [ "$(cat .venv-bench/.installed 2>/dev/null)" != "$want" ]; then
  echo "bench: installing .venv-bench (dev-requirements.txt + bench/requirements.txt), once" >&2
  .venv-bench/bin/python -m pip install --quiet --disable-pip-version-check \
    -r dev-requirements.txt -r bench/requirements.txt
  echo "$want" > .venv-bench/.installed
fi
exec .venv-bench/bin/python -m bench "$@"
