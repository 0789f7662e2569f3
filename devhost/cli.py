"""Command line: ``python -m devhost`` hosts the app; ``python -m devhost token`` prints a dev token.

``token`` prints only the token on stdout, so ``TOKEN=$(python -m devhost token)`` works; all
diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from devhost.azurite import PROJECT_ROOT, Azurite, connection_string, ports_open, start_azurite
from devhost.banner import render_banner
from devhost.console import configure_console
from devhost.errors import DevHostError
from devhost.host import DevHost
from devhost.issuer import DEV_USER_OID, DevIssuer, default_key_dir
from devhost.settings import DEFAULT_CONNECTION, DEVELOPMENT_PORTS, read_settings_file

log = logging.getLogger("devhost")
# Environment variables that move ``--azurite`` off the emulator's default ports.
AZURITE_PORT_VARIABLES = ("AZURITE_BLOB_PORT", "AZURITE_QUEUE_PORT", "AZURITE_TABLE_PORT")


def _lease_seconds(text: str) -> float:
    value = float(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1 second (queue visibility is in whole seconds)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devhost", description="Host the function app locally.")
    parser.add_argument("--port", type=int, default=7071, help="HTTP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--app", default="function_app", help="the script module to index (default function_app)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_ROOT, help="folder with host.json and the app")
    parser.add_argument(
        "--azurite", action="store_true",
        help="start an in-memory Azurite first (ports 10000-10002, or AZURITE_*_PORT) for AzureWebJobsStorage",
    )
    parser.add_argument(
        "--message-lease", type=_lease_seconds, default=600.0, metavar="SECONDS",
        help="how long a received queue message stays invisible, renewed at half while its function runs; "
             "a host killed without stopping leaves its messages invisible this long (default 600, as the "
             "Functions host; at least 1)",
    )
    commands = parser.add_subparsers(dest="command")
    token = commands.add_parser("token", help="print a development access token (and nothing else) to stdout")
    token.add_argument("--tenant", help="tenant id (default: first of JOBS_AUTH_TENANTS)")
    token.add_argument("--oid", default=DEV_USER_OID, help="user object id (default: the development user)")
    token.add_argument("--scopes", nargs="+", default=[], metavar="S", help="delegated scopes (scp claim)")
    token.add_argument("--roles", nargs="+", default=[], metavar="R", help="app roles (roles claim)")
    token.add_argument("--audience", help="aud claim (default: first of JOBS_AUTH_AUDIENCES)")
    token.add_argument("--project-dir", type=Path, default=argparse.SUPPRESS, help="as above, after 'token'")
    token.add_argument("--lifetime", type=int, default=3600, metavar="SECONDS", help="token lifetime (default 3600)")
    demo = commands.add_parser("demo", help="submit a first doc-index job to a running devhost and watch it finish")
    demo.add_argument("--base-url", default="http://127.0.0.1:7071", help="where devhost listens")
    demo.add_argument("--project-dir", type=Path, default=argparse.SUPPRESS, help="as above, after 'demo'")
    return parser


def setting_default(name: str, project_dir: Path) -> str | None:
    """First comma-separated entry of a setting: environment, local.settings.json, then the example file."""
    for source in (
        os.environ,
        read_settings_file(project_dir / "local.settings.json"),
        read_settings_file(project_dir / "local.settings.json.example"),
    ):
        value = source.get(name)
        if value:
            first = value.split(",")[0].strip()
            if first:
                return first
    return None


def run_demo_command(args: argparse.Namespace) -> int:
    from devhost.demo import DEV_STORAGE, run_demo  # noqa: PLC0415 - only this command needs the blob SDK

    tenant = setting_default("JOBS_AUTH_TENANTS", args.project_dir)
    audience = setting_default("JOBS_AUTH_AUDIENCES", args.project_dir)
    storage = os.environ.get(DEFAULT_CONNECTION) or read_settings_file(args.project_dir / "local.settings.json").get(
        DEFAULT_CONNECTION) or DEV_STORAGE
    if not tenant or not audience:
        print("devhost demo: set JOBS_AUTH_TENANTS and JOBS_AUTH_AUDIENCES", file=sys.stderr)
        return 2
    return run_demo(args.base_url.rstrip("/"), storage, tenant=tenant, audience=audience, project_dir=args.project_dir)


def run_token(args: argparse.Namespace) -> int:
    tenant = args.tenant or setting_default("JOBS_AUTH_TENANTS", args.project_dir)
    audience = args.audience or setting_default("JOBS_AUTH_AUDIENCES", args.project_dir)
    if not tenant or not audience:
        print("devhost token: no tenant/audience: pass --tenant/--audience or set JOBS_AUTH_TENANTS and "
              "JOBS_AUTH_AUDIENCES", file=sys.stderr)
        return 2
    issuer = DevIssuer(default_key_dir(args.project_dir))
    print(issuer.mint(tenant=tenant, audience=audience, oid=args.oid, scopes=args.scopes, roles=args.roles,
                      lifetime=args.lifetime))
    return 0


def _start_azurite() -> Azurite | None:
    """Start Azurite for ``--azurite`` (None when one already listens on those ports) and point storage at it."""
    defaults = zip(AZURITE_PORT_VARIABLES, DEVELOPMENT_PORTS, strict=True)
    ports = [int(os.environ.get(variable) or default) for variable, default in defaults]
    azurite: Azurite | None = None
    if ports_open(*ports):
        log.info("Azurite is already listening on ports %s; using it", ports)
        connection = connection_string(*ports)
    else:
        azurite = start_azurite(blob_port=ports[0], queue_port=ports[1], table_port=ports[2])
        connection = azurite.connection_string
        log.info("Started Azurite (in memory) on ports %s", ports)
    os.environ.setdefault(DEFAULT_CONNECTION, connection)
    return azurite


async def _serve(host: DevHost) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await host.start()
    try:
        print(render_banner(host.base_url, host.config.route_prefix, host.functions), flush=True)
        await stopping.wait()
        log.info("Shutting down")
    finally:
        await host.stop()


def run_host(args: argparse.Namespace) -> int:
    try:
        azurite = _start_azurite() if args.azurite else None
    except RuntimeError as error:  # azurite missing or not starting
        print(f"devhost: {error}", file=sys.stderr)
        return 1
    try:
        host = DevHost(args.app, project_dir=args.project_dir, port=args.port, message_lease=args.message_lease)
        asyncio.run(_serve(host))
    except DevHostError as error:
        print(f"devhost: {error}", file=sys.stderr)
        return 1
    finally:
        if azurite is not None:
            azurite.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_console(sys.stderr)  # job lines carry jobId, correlationId and attempt
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every request at INFO
    if args.command == "token":
        return run_token(args)
    if args.command == "demo":
        return run_demo_command(args)
    return run_host(args)
