"""``python -m devhost``: the token command and hosting the app in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import jwt

from devhost.azurite import PROJECT_ROOT, Azurite, free_port, ports_open
from devhost.issuer import DEV_USER_OID, DevIssuer
from tests.devhost.helpers import SAMPLE_APP, write_host_json

EXAMPLE_TENANT = "5e1f3c2a-7b4d-4c8e-9a6f-0d2b1c3e4f5a"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JOBS_AUTH_")}
    return subprocess.run(
        [sys.executable, "-m", "devhost", *args],
        capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT, env={**environment, **(env or {})},
        check=False,
    )


def decode(token: str, project_dir: Path, audience: str) -> dict[str, Any]:
    key = DevIssuer(project_dir / ".devhost").jwks()["keys"][0]
    public = jwt.PyJWK(key).key
    return dict(jwt.decode(token, public, algorithms=["RS256"], audience=audience))


def test_token_prints_only_a_verifiable_token(tmp_path: Path) -> None:
    result = run_cli(
        "token", "--project-dir", str(tmp_path), "--tenant", "t1", "--audience", "api://x",
        "--scopes", "Jobs.Submit", "Jobs.Read", "--roles", "Jobs.Admin", "--lifetime", "120",
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"  # nothing else on stdout
    claims = decode(token, tmp_path, "api://x")
    assert claims["tid"] == "t1" and claims["scp"] == "Jobs.Submit Jobs.Read" and claims["roles"] == ["Jobs.Admin"]
    assert claims["oid"] == DEV_USER_OID
    assert claims["exp"] == claims["iat"] + 120


def test_token_defaults_come_from_settings(tmp_path: Path) -> None:
    example = {"Values": {"JOBS_AUTH_TENANTS": f"{EXAMPLE_TENANT}, other", "JOBS_AUTH_AUDIENCES": "api://example"}}
    (tmp_path / "local.settings.json.example").write_text(json.dumps(example), encoding="utf-8")
    result = run_cli("token", "--project-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert decode(result.stdout.strip(), tmp_path, "api://example")["tid"] == EXAMPLE_TENANT
    local = {"Values": {"JOBS_AUTH_AUDIENCES": "api://local"}}
    (tmp_path / "local.settings.json").write_text(json.dumps(local), encoding="utf-8")
    result = run_cli("token", "--project-dir", str(tmp_path), env={"JOBS_AUTH_TENANTS": "env-tenant"})
    claims = decode(result.stdout.strip(), tmp_path, "api://local")
    assert claims["tid"] == "env-tenant"


def test_token_without_defaults_fails_clearly(tmp_path: Path) -> None:
    result = run_cli("token", "--project-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stdout == "" and "JOBS_AUTH_TENANTS" in result.stderr


def serve(project_dir: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    """Start ``python -m devhost`` on a free port with the sample app."""
    write_host_json(project_dir)
    command = [sys.executable, "-m", "devhost", *extra, "--port", "0", "--app", SAMPLE_APP]
    return subprocess.Popen(
        [*command, "--project-dir", str(project_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT,
        env={**env, "SAMPLE_SCHEDULE": "0 0 0 1 1 *", "PYTHONPATH": str(PROJECT_ROOT)},
    )


def read_base_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("devhost listening on http://127.0.0.1:"), first
    return first.split()[-1]


def finish(process: subprocess.Popen[str], signum: int) -> str:
    """Signal the host, check it exits cleanly, and return its stderr."""
    try:
        process.send_signal(signum)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.stderr.read() if process.stderr else ""


def test_serve_prints_banner_and_stops_on_sigint(tmp_path: Path, azurite: Azurite, queue_name: str) -> None:
    env = {**os.environ, "SAMPLE_QUEUE": queue_name, "AzureWebJobsStorage": azurite.connection_string}
    process = serve(tmp_path, env)
    try:
        base_url = read_base_url(process)
        assert process.stdout is not None
        banner: list[str] = []
        while (line := process.stdout.readline()) and not line.startswith("Press Ctrl+C"):
            banner.append(line)
        assert any(f"hello: [GET] {base_url}/api/hello/{{name:alpha}}" in line for line in banner)
        assert any(f"work: queue {queue_name}" in line for line in banner)
        with urllib.request.urlopen(f"{base_url}/api/hello/Cli", timeout=10) as response:
            assert response.read() == b"hello Cli"
    finally:
        stderr = finish(process, signal.SIGINT)
    assert "Executed 'Functions.hello' (Succeeded" in stderr
    assert "Shutting down" in stderr


def test_serve_reports_startup_errors(tmp_path: Path) -> None:
    result = run_cli("--port", "0", "--project-dir", str(tmp_path), "--app", "no_such_module_here")
    assert result.returncode == 1
    assert "no_such_module_here" in result.stderr and "Traceback" not in result.stderr


def test_serve_with_azurite_sets_the_storage_connection(tmp_path: Path, queue_name: str) -> None:
    ports = {name: str(free_port()) for name in ("AZURITE_BLOB_PORT", "AZURITE_QUEUE_PORT", "AZURITE_TABLE_PORT")}
    env = {k: v for k, v in os.environ.items() if k != "AzureWebJobsStorage"} | ports | {"SAMPLE_QUEUE": queue_name}
    process = serve(tmp_path, env, "--azurite")
    try:
        url = f"{read_base_url(process)}/api/settings?names=AzureWebJobsStorage"
        with urllib.request.urlopen(url, timeout=10) as response:
            connection = json.loads(response.read())["AzureWebJobsStorage"]
        assert f"QueueEndpoint=http://127.0.0.1:{ports['AZURITE_QUEUE_PORT']}/" in connection
    finally:
        finish(process, signal.SIGTERM)
    assert not ports_open(int(ports["AZURITE_QUEUE_PORT"]))  # the Azurite it started is gone


def test_message_lease_flag_sets_the_hosts_lease_and_refuses_less_than_a_second(tmp_path: Path) -> None:
    from devhost.cli import build_parser

    assert build_parser().parse_args(["--message-lease", "7.5"]).message_lease == 7.5
    assert build_parser().parse_args([]).message_lease == 600.0  # the Functions host's
    result = run_cli("--port", "0", "--project-dir", str(tmp_path), "--message-lease", "0.5")
    assert result.returncode == 2 and "at least 1 second" in result.stderr
