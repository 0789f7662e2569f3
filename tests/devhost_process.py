"""The real app in its own process: ``python -m devhost`` on a free port, with names unique to
the caller, against the session's Azurite. Used by the end-to-end tests (HTTP and CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devhost.azurite import PROJECT_ROOT, Azurite, free_port
from tests.support import AUDIENCE, TENANT

# Client settings a developer may have exported; the tests choose their own.
CLIENT_SETTINGS = ("JOBS_AUTH_MODE", "JOBS_CLIENT_SECRET", "JOBS_DEV_SCOPES", "JOBS_DEV_ROLES", "JOBS_DEV_OID")


@contextmanager
def devhost_process(azurite: Azurite, log_dir: Path, prefix: str) -> Iterator[dict[str, str]]:
    """Yield the environment the host runs with, plus ``BASE_URL`` / ``JOBS_BASE_URL``."""
    tag = f"{prefix}{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in CLIENT_SETTINGS},
        "AzureWebJobsStorage": azurite.connection_string,
        "JOBS_QUEUE": f"{tag}-jobs", "JOBS_OUTCOMES_QUEUE": f"{tag}-outcomes", "JOBS_TABLE": f"{tag}jobs",
        "JOBS_INDEX_TABLE": f"{tag}index", "JOBS_DOCUMENTS_CONTAINER": f"{tag}-documents",
        "JOBS_ANALYSIS_CONTAINER": f"{tag}-analysis", "JOBS_MAIL_CONTAINER": f"{tag}-mail",
        "JOBS_AUTH_TENANTS": TENANT, "JOBS_AUTH_AUDIENCES": AUDIENCE,
        "JOBS_AUTH_JWKS_URI": f"http://127.0.0.1:{port}/.devhost/keys",
        "JOBS_MAINTENANCE_SCHEDULE": "0 */5 * * * *", "FUNCTIONS_WORKER_RUNTIME": "python",
    }
    log_path = log_dir / "devhost.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "--port", str(port)], cwd=PROJECT_ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_up(base, process, log_path)
            yield {**env, "BASE_URL": base, "JOBS_BASE_URL": base}
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_until_up(base: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"devhost exited: {log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/.devhost/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"devhost did not come up: {log_path.read_text()}")
