"""Several ``python -m devhost`` processes on one set of queues and tables, as the Functions host
scales out: each on its own port, each killable with SIGKILL and restartable on the same port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devhost.azurite import PROJECT_ROOT, connection_string, free_port

TENANT = "5e1f3c2a-7b4d-4c8e-9a6f-0d2b1c3e4f5a"  # local.settings.json.example's
AUDIENCE = "api://background-jobs-local"
# Settings a developer may have exported that would change what the hosts or the token do.
FOREIGN = ("JOBS_AUTH_MODE", "JOBS_CLIENT_SECRET", "JOBS_DEV_SCOPES", "JOBS_DEV_ROLES", "JOBS_DEV_OID",
           "APPLICATIONINSIGHTS_CONNECTION_STRING")

# Short repair delays, so that every repair the app has happens within a run of a few minutes.
FAST_REPAIRS = {
    "JOBS_LEASE_SECONDS": "6",  # a killed worker's job is taken over 6 s after its last renewal
    "JOBS_STRANDED_QUEUED_SECONDS": "8",  # a Queued job with no message is re-sent after 8 s
    "JOBS_OUTCOME_GRACE_SECONDS": "4",  # an event a crash kept from being sent goes out after 4 s
    "JOBS_MAINTENANCE_SCHEDULE": "*/4 * * * * *",  # every 4 s, on every host
    "JOBS_RETRY_BASE_SECONDS": "1",
    "JOBS_RETRY_MAX_SECONDS": "8",
    "JOBS_MAX_INFLIGHT_PER_PRINCIPAL": "100000",  # the quota is not under test here
}
MESSAGE_LEASE_SECONDS = 10.0  # devhost --message-lease: a killed host's messages return after 10 s


def shared_names(tag: str) -> dict[str, str]:
    """Queue, table and container names unique to one run, the same for every host of it."""
    return {
        "JOBS_QUEUE": f"{tag}-jobs", "JOBS_OUTCOMES_QUEUE": f"{tag}-outcomes", "JOBS_TABLE": f"{tag}jobs",
        "JOBS_INDEX_TABLE": f"{tag}index", "JOBS_DOCUMENTS_CONTAINER": f"{tag}-documents",
        "JOBS_ANALYSIS_CONTAINER": f"{tag}-analysis", "JOBS_MAIL_CONTAINER": f"{tag}-mail",
    }


def storage_ports(connection: str) -> tuple[int, int, int]:
    """The blob, queue and table ports of an Azurite connection string."""
    parts = dict(p.split("=", 1) for p in connection.split(";") if "=" in p)
    return tuple(int(parts[f"{kind}Endpoint"].split(":")[2].split("/")[0])  # type: ignore[return-value]
                 for kind in ("Blob", "Queue", "Table"))


def host_environment(storage: str, names: Mapping[str, str], port: int,
                     settings: Mapping[str, str] | None = None) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k not in FOREIGN},
        "AzureWebJobsStorage": storage, **names,
        "JOBS_AUTH_TENANTS": TENANT, "JOBS_AUTH_AUDIENCES": AUDIENCE,
        "JOBS_AUTH_JWKS_URI": f"http://127.0.0.1:{port}/.devhost/keys",  # each host serves the issuer's keys
        "FUNCTIONS_WORKER_RUNTIME": "python", **(settings or {}),
    }


@dataclass
class Host:
    index: int
    port: int
    env: dict[str, str]
    log_path: Path
    message_lease: float
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n==== start {self.starts} ====\n".encode())
            log.flush()
            self.process = subprocess.Popen(  # noqa: S603 - fixed argument list
                [sys.executable, "-m", "devhost", "--port", str(self.port),
                 "--message-lease", str(self.message_lease)],
                cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

    def wait_until_up(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"devhost {self.index} exited: see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/.devhost/health", timeout=2):  # noqa: S310 - loopback
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"devhost {self.index} did not come up in {timeout:.0f} s: see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no hand-back; its messages stay invisible for the message lease."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class HostFleet:
    """``count`` hosts sharing ``names`` against ``storage`` (a connection string)."""

    storage: str
    names: Mapping[str, str]
    log_dir: Path
    count: int = 3
    settings: Mapping[str, str] = field(default_factory=dict)
    message_lease: float = 600.0
    hosts: list[Host] = field(default_factory=list)

    def start(self) -> None:
        for index in range(self.count):
            port = free_port()
            host = Host(index, port, host_environment(self.storage, self.names, port, self.settings),
                        self.log_dir / f"devhost-{index}.log", self.message_lease)
            self.hosts.append(host)
            host.start()
        for host in self.hosts:
            host.wait_until_up()

    def stop(self) -> None:
        for host in self.hosts:
            if host.alive and host.process is not None:
                host.process.terminate()
        for host in self.hosts:
            host.stop()

    @property
    def base_urls(self) -> list[str]:
        return [host.base_url for host in self.hosts]

    def token(self, *scopes: str, lifetime: int = 7200) -> str:
        """A development token from ``python -m devhost token`` (the hosts validate it with the same key)."""
        out = subprocess.run(  # noqa: S603 - fixed argument list
            [sys.executable, "-m", "devhost", "token", "--tenant", TENANT, "--audience", AUDIENCE,
             "--lifetime", str(lifetime), "--scopes", *scopes],
            cwd=PROJECT_ROOT, env=self.hosts[0].env if self.hosts else dict(os.environ),
            capture_output=True, text=True, check=True, timeout=60,
        )
        return out.stdout.strip()


__all__ = ["AUDIENCE", "FAST_REPAIRS", "MESSAGE_LEASE_SECONDS", "TENANT", "Host", "HostFleet", "connection_string",
           "host_environment", "shared_names", "storage_ports"]
