#!/usr/bin/env bash
# Run the app locally: install what is missing, start Azurite (in memory) and devhost on
# http://127.0.0.1:7071, and print how to submit a first job. Ctrl+C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
if [ ! -f local.settings.json ]; then
  cp local.settings.json.example local.settings.json
  echo "created local.settings.json from local.settings.json.example"
fi
cat <<'GUIDE'

  Submit a first job (in another terminal, in this folder):
    .venv/bin/python -m devhost demo          # uploads a text, posts a doc-index job, follows its status
  or by hand:
    TOKEN=$(.venv/bin/python -m devhost token --scopes Jobs.Submit Jobs.Read)
    curl -s -X POST http://127.0.0.1:7071/api/jobs -H "Authorization: Bearer $TOKEN" \
         -H 'Content-Type: application/json' \
         -d '{"jobType":"doc-index","subjectId":"<guid of documents/<tenant>/<guid>>","payload":{"rowVersion":1,"action":"index"}}'
    curl -s http://127.0.0.1:7071/api/jobs/<jobId>/status -H "Authorization: Bearer $TOKEN"

GUIDE
exec .venv/bin/python -m devhost --azurite "$@"
