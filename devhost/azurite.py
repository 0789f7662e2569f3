"""Start and stop a real Azurite (the npm package ``azurite``) for local work and tests.

Azurite always listens on 127.0.0.1, never phones home (``--disableTelemetry``) and keeps its
data in memory unless a location is given. Ports default to free ephemeral ones so a test run
never collides with an Azurite a developer already has running.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

ACCOUNT = "devstoreaccount1"
# Azurite's published, well-known development key: not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
HOST = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def connection_string(blob_port: int, queue_port: int, table_port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{HOST}:{blob_port}/{ACCOUNT};"
        f"QueueEndpoint=http://{HOST}:{queue_port}/{ACCOUNT};"
        f"TableEndpoint=http://{HOST}:{table_port}/{ACCOUNT};"
    )


def azurite_executable() -> str:
    local = PROJECT_ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found is None:
        raise RuntimeError("azurite is not installed: run `npm ci` in the project folder (see README)")
    return found


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def ports_open(*ports: int) -> bool:
    """Whether something already listens on every one of these local ports (e.g. a running Azurite)."""
    return all(_port_open(port) for port in ports)


@dataclass
class Azurite:
    """A running Azurite process; ``stop()`` ends it."""

    blob_port: int
    queue_port: int
    table_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_port, self.queue_port, self.table_port)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_azurite(
    *,
    blob_port: int = 0,
    queue_port: int = 0,
    table_port: int = 0,
    location: Path | None = None,
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> Azurite:
    """Start Azurite on 127.0.0.1 and wait until all three services accept connections."""
    ports = [p or free_port() for p in (blob_port, queue_port, table_port)]
    args = [
        azurite_executable(),
        "--silent",
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--loose",
        "--blobHost", HOST, "--blobPort", str(ports[0]),
        "--queueHost", HOST, "--queuePort", str(ports[1]),
        "--tableHost", HOST, "--tablePort", str(ports[2]),
        # Keep idle connections longer than the SDK clients' pools do (aiohttp: 15 s); with
        # Azurite's 5 s default, a pooled connection can be reset just as it is reused (the app's
        # retry policies send the request again, at the cost of a round trip).
        "--blobKeepAliveTimeout", "60", "--queueKeepAliveTimeout", "60", "--tableKeepAliveTimeout", "60",
    ]
    if location is None:
        args.append("--inMemoryPersistence")
    else:
        location.mkdir(parents=True, exist_ok=True)
        args += ["--location", str(location)]
    log = log_path.open("ab") if log_path else subprocess.DEVNULL  # the child process owns the file
    process = subprocess.Popen(  # noqa: S603 - fixed argument list
        args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        cwd=str(location or PROJECT_ROOT), env={**os.environ},
    )
    azurite = Azurite(ports[0], ports[1], ports[2], process)
    deadline = time.monotonic() + timeout
    while not all(_port_open(p) for p in ports):
        if process.poll() is not None:
            raise RuntimeError(f"azurite exited with code {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            azurite.stop()
            raise RuntimeError("azurite did not start listening in time")
        time.sleep(0.1)
    return azurite
