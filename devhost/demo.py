"""``python -m devhost demo``: submit a first job to a running devhost and watch it finish.

Uploads a short text to ``documents/<tenant>/<new guid>`` in the configured storage (Azurite),
mints a development token, posts a ``doc-index`` job, and polls its status URL until the job is
terminal, printing each step with the equivalent curl command.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient

from devhost.issuer import DEV_USER_OID, DevIssuer, default_key_dir

SAMPLE_TEXT = (
    "Background jobs on Azure Functions run document indexing, analysis and e-mail processing. "
    "Each job is queued, claimed with an ETag, run by an idempotent handler and recorded in Table storage."
)
DEV_STORAGE = "UseDevelopmentStorage=true"


def _request(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - loopback URL
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"{}")


def run_demo(base_url: str, storage: str, *, tenant: str, audience: str, project_dir: Path, timeout: float = 60) -> int:
    subject = uuid.uuid4()
    blob_path = f"{tenant}/{subject}"
    blobs = BlobServiceClient.from_connection_string(storage)
    container = blobs.get_container_client("documents")
    if not container.exists():
        container.create_container()
    container.upload_blob(blob_path, SAMPLE_TEXT.encode(), overwrite=True)
    print(f"1. uploaded a text to documents/{blob_path}")
    token = DevIssuer(default_key_dir(project_dir)).mint(
        tenant=tenant, audience=audience, oid=DEV_USER_OID,
        scopes=["Jobs.Submit", "Jobs.Read"],
    )
    print("2. token: python -m devhost token --scopes Jobs.Submit Jobs.Read")
    job = {"jobType": "doc-index", "subjectId": str(subject), "payload": {"rowVersion": 1, "action": "index"}}
    print(f"3. curl -X POST {base_url}/api/jobs -H \"Authorization: Bearer $TOKEN\" "
          f"-H 'Content-Type: application/json' -d '{json.dumps(job)}'")
    status, body = _request("POST", f"{base_url}/api/jobs", token, job)
    print(f"   -> {status} {json.dumps(body)}")
    if status != 202:
        return 1
    deadline = time.monotonic() + timeout
    print(f"4. curl {base_url}{body['statusUrl']} -H \"Authorization: Bearer $TOKEN\"")
    while time.monotonic() < deadline:
        status, state = _request("GET", f"{base_url}{body['statusUrl']}", token)
        print(f"   -> {status} {state.get('status')} {json.dumps(state.get('result', {}))}")
        if state.get("status") in ("Completed", "Failed", "Poisoned", "Cancelled"):
            return 0 if state["status"] == "Completed" else 1
        time.sleep(1)
    print("   the job did not finish in time")
    return 1
