"""The real app in its own process: ``python -m devhost`` on a free port, with names unique to
the caller, against the session's Azurite. Used by the end-to-end tests (HTTP and CLI).

``devhost_processes`` starts several, as the Functions host scales out: the same queue, table
and container names, each host on its own port (and serving the issuer's keys itself)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from devhost.azurite import PROJECT_ROOT, Azurite, free_port
from tests.support import AUDIENCE, TENANT

# Client settings a developer may have exported; the tests choose their own.
CLIENT_SETTINGS = ("JOBS_AUTH_MODE", "JOBS_CLIENT_SECRET", "JOBS_DEV_SCOPES", "JOBS_DEV_ROLES", "JOBS_DEV_OID")


def _names(tag: str) -> dict[str, str]:
    return {
        "JOBS_QUEUE": f"{tag}-jobs", "JOBS_OUTCOMES_QUEUE": f"{tag}-outcomes", "JOBS_TABLE": f"{tag}jobs",
        "JOBS_INDEX_TABLE": f"{tag}index", "JOBS_DOCUMENTS_CONTAINER": f"{tag}-documents",
        "JOBS_ANALYSIS_CONTAINER": f"{tag}-analysis", "JOBS_MAIL_CONTAINER": f"{tag}-mail",
    }


@contextmanager
def devhost_process(azurite: Azurite, log_dir: Path, prefix: str) -> Iterator[dict[str, str]]:
    """Yield the environment the host runs with, plus ``BASE_URL`` / ``JOBS_BASE_URL``."""
    with devhost_processes(azurite, log_dir, prefix, 1) as hosts:
        yield hosts[0]


@contextmanager
def devhost_processes(azurite: Azurite, log_dir: Path, prefix: str, count: int,
                      settings: Mapping[str, str] | None = None) -> Iterator[list[dict[str, str]]]:
    """``count`` hosts sharing one set of names; yields each one's environment (with ``BASE_URL``).
    ``settings`` override the app settings of every host."""
    names = _names(f"{prefix}{uuid.uuid4().hex[:8]}")
    processes: list[subprocess.Popen[bytes]] = []
    hosts: list[dict[str, str]] = []
    try:
        for index in range(count):
            port = free_port()
            env = {
                **{k: v for k, v in os.environ.items() if k not in CLIENT_SETTINGS},
                "AzureWebJobsStorage": azurite.connection_string, **names,
                "JOBS_AUTH_TENANTS": TENANT, "JOBS_AUTH_AUDIENCES": AUDIENCE,
                "JOBS_AUTH_JWKS_URI": f"http://127.0.0.1:{port}/.devhost/keys",
                "JOBS_MAINTENANCE_SCHEDULE": "0 */5 * * * *", "FUNCTIONS_WORKER_RUNTIME": "python",
                **(settings or {}),
            }
            log_path = log_dir / ("devhost.log" if count == 1 else f"devhost-{index}.log")
            with log_path.open("wb") as log:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "devhost", "--port", str(port)], cwd=PROJECT_ROOT, env=env,
                    stdout=log, stderr=subprocess.STDOUT,
                ))
            base = f"http://127.0.0.1:{port}"
            hosts.append({**env, "BASE_URL": base, "JOBS_BASE_URL": base, "LOG_PATH": str(log_path)})
        for host, process in zip(hosts, processes, strict=True):
            _wait_until_up(host["BASE_URL"], process, Path(host["LOG_PATH"]))
        yield hosts
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
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
