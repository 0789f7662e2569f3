"""``jobsctl`` (or ``jobs``, or ``python -m client``): the background-jobs API from the command line.

    jobs submit --type doc-index --subject <guid> --payload '{"rowVersion": 1, "action": "index"}'
    jobs wait <jobId>          # live progress; the exit code tells how the job ended
    jobs status <jobId> --history | jobs cancel <jobId> | jobs retry <jobId> | jobs list --all

Results go to stdout (``--json``: the server's JSON), progress and errors to stderr. Errors print
as ``code: detail (correlation id …)``; exit codes are in client.exit_codes and docs/client.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
import uuid
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from client import commands, exit_codes, output
from client.api import JobsClient
from client.auth import build_token_provider
from client.errors import (
    AuthenticationError,
    ConfigurationError,
    JobsApiError,
    JobsConnectionError,
    WaitTimeoutError,
)
from client.models import JobState
from client.settings import AUTH_MODES, DEFAULT_BASE_URL, ClientSettings, choose_auth_mode

EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (WaitTimeoutError, exit_codes.TIMEOUT), (JobsApiError, exit_codes.API_ERROR),
    (JobsConnectionError, exit_codes.UNREACHABLE), (AuthenticationError, exit_codes.AUTH_FAILED),
    (ConfigurationError, exit_codes.USAGE),
)
STATUSES = [state.value for state in JobState]
DISTRIBUTION = "azure-functions-background-jobs"
# pyproject.toml of a source checkout, for `python -m client` run without `pip install -e .`.
CHECKOUT_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def package_version() -> str:
    """The installed distribution's version; else the checkout's pyproject.toml; else "unknown"."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    try:
        project = tomllib.loads(CHECKOUT_PYPROJECT.read_text(encoding="utf-8")).get("project", {})
    except (OSError, ValueError):
        return "unknown"
    if project.get("name") == DISTRIBUTION and isinstance(project.get("version"), str):
        return f"{project['version']} (not installed)"
    return "unknown"


def program_name(argv0: str | None = None) -> str:
    """The name the user typed (``jobsctl``, ``jobs``), or ``python -m client`` for the package's ``__main__``.

    argparse would say ``__main__.py`` for ``python -m client``, and a fixed name would be wrong
    for one of the two console scripts.
    """
    path = Path(sys.argv[0] if argv0 is None else argv0)
    if path.name == "__main__.py":
        return f"python -m {path.parent.name}"
    if path.suffix.lower() == ".exe":  # the console scripts on Windows
        return path.stem
    return path.name or "jobsctl"


def guid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a GUID: {text!r}") from None


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return value


def json_object(text: str) -> dict[str, Any]:
    """A JSON object given inline, as ``@file`` or as ``@-`` (standard input)."""
    try:
        if text == "@-":
            text = sys.stdin.read()
        elif text.startswith("@"):
            text = Path(text[1:]).read_text(encoding="utf-8")
        value = json.loads(text)
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {error.strerror}") from None
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("the payload must be a JSON object")
    return value


def add_global_options(parser: argparse.ArgumentParser, env: Mapping[str, str] | None) -> None:
    """The options every command takes, before or after the command name (``env`` None: after it)."""
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if env is None else value

    settings_url = (env or {}).get("JOBS_BASE_URL") or DEFAULT_BASE_URL
    group = parser.add_argument_group("global options")
    group.add_argument("--base-url", default=default(settings_url),
                       help="the API's base URL (default: $JOBS_BASE_URL or http://127.0.0.1:7071)")
    group.add_argument("--auth", choices=AUTH_MODES, default=default(None),
                       help="how to get a token (default: $JOBS_AUTH_MODE, else dev for a loopback URL, "
                            "client-credentials when a client secret or certificate is set, else device-code)")
    group.add_argument("--json", action="store_true", default=default(False), help="print the server's JSON")
    group.add_argument("--correlation-id", type=guid, default=default(None), metavar="GUID",
                       help="x-correlation-id to send (default: a new one per request)")
    group.add_argument("--http-timeout", type=positive_float, default=default(30.0), metavar="SECONDS",
                       help="timeout of each HTTP request (default 30)")


def _wait_options(parser: argparse.ArgumentParser, *, flag: bool) -> None:
    if flag:
        parser.add_argument("--wait", action="store_true", help="then wait for the job like `jobs wait`")
    parser.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                        help="give up waiting after this long (exit 6); default: no limit")


def _add_commands(parser: argparse.ArgumentParser) -> None:
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        sub = subparsers.add_parser(name, help=text, description=text)
        add_global_options(sub, None)
        return sub

    submit = command("submit", "submit a job (202: its id; a duplicate answers with the same id)")
    submit.add_argument("--type", help="job type, e.g. doc-index (required unless --from-file)")
    submit.add_argument("--subject", type=guid, help="subject id (GUID; required unless --from-file)")
    submit.add_argument("--from-file", metavar="FILE", help="JSON Lines, one submission per line "
                        '({"jobType", "subjectId", "payload"}), sent in batches of 100; - for standard input')
    submit.add_argument("--payload", type=json_object, default={}, metavar="JSON",
                        help="job payload: a JSON object, @file or @- (default {})")
    when = submit.add_mutually_exclusive_group()
    when.add_argument("--delay", type=non_negative_int, metavar="SECONDS", help="run it no sooner than this from now")
    when.add_argument("--not-before", metavar="TIME", help="run it no sooner than this RFC 3339 time "
                      "(e.g. 2026-12-24T18:00:00Z); at most 7 days ahead")
    _wait_options(submit, flag=True)
    upload = command("upload", "upload a file as a new subject (a document or an e-mail) and print its subject id")
    upload.add_argument("file", metavar="FILE", help="the file to upload (at most 16 MiB)")
    upload.add_argument("--kind", required=True, choices=("document", "mail"),
                        help="document: UTF-8 text (doc-index, ai-analyze); mail: an RFC 5322 .eml (email-process)")
    events = command("events", "print the JobOutcome events (CloudEvents) on the outcomes queue and acknowledge them")
    events.add_argument("--follow", action="store_true", help="keep waiting for new events (Ctrl-C ends)")
    events.add_argument("--queue", help="the outcomes queue's name (default $JOBS_EVENTS_QUEUE or job-outcomes)")
    analyze = command("analyze", "enqueue an ai-analyze job for a document")
    analyze.add_argument("--document", required=True, type=guid, help="document id (GUID)")
    analyze.add_argument("--type", required=True, help="analysis type: statistics, keywords, summary or full")
    _wait_options(analyze, flag=True)
    status = command("status", "show a job's status")
    status.add_argument("job", metavar="JOB", help="job id")
    status.add_argument("--history", action="store_true", help="include the status transitions")
    result = command("result", "print a Completed job's output (JSON; --json adds jobId, jobType, completedAt)")
    result.add_argument("job", metavar="JOB", help="job id")
    result.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead of standard output")
    wait = command("wait", "wait until a job is terminal, showing its progress; exit 0 only when Completed")
    wait.add_argument("job", metavar="JOB", help="job id")
    _wait_options(wait, flag=False)
    cancel = command("cancel", "cancel a job (at once when Queued; a Running job stops when its handler sees it)")
    cancel.add_argument("job", metavar="JOB", help="job id")
    retry = command("retry", "run a Failed or Poisoned job again")
    retry.add_argument("job", metavar="JOB", help="job id")
    _wait_options(retry, flag=True)
    jobs = command("list", "list jobs, newest first (one page unless --all)")
    jobs.add_argument("--status", choices=STATUSES, help="only jobs in this status")
    jobs.add_argument("--type", help="only jobs of this type")
    jobs.add_argument("--subject", type=guid, help="only jobs about this subject")
    jobs.add_argument("--page-size", type=positive_int, metavar="N", help="jobs per page (the server caps it)")
    jobs.add_argument("--continuation-token", metavar="TOKEN", help="the page after the one that printed it")
    jobs.add_argument("--all", action="store_true", help="follow continuation tokens to the last page")


def build_parser(env: Mapping[str, str] | None = None, prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog or program_name(), description="Submit and follow background jobs over the HTTP API.",
        epilog="exit codes: 0 ok/Completed, 1 API error, 2 usage or settings, 3 Failed, 4 Poisoned, 5 Cancelled, "
               "6 wait timed out, 7 API unreachable, 8 no token",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                        help="print the version and exit")
    add_global_options(parser, {} if env is None else env)
    _add_commands(parser)
    return parser


def make_client(args: argparse.Namespace, settings: ClientSettings, stderr: TextIO) -> JobsClient:
    mode = choose_auth_mode(args.base_url, settings, args.auth)

    def prompt(message: str) -> None:
        print(message, file=stderr, flush=True)

    return JobsClient(args.base_url, build_token_provider(mode, settings, prompt=prompt), timeout=args.http_timeout)


def main(
    argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None, stdout: TextIO | None = None,
    stderr: TextIO | None = None, prog: str | None = None,
) -> int:
    env = os.environ if env is None else env
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = build_parser(env, prog).parse_args(argv)
    args.env = env  # commands that read settings of their own (events)
    try:
        client = make_client(args, ClientSettings.from_env(env), err)
        return commands.COMMANDS[args.command](client, args, commands.Io(out, err, args.json))
    except KeyboardInterrupt:
        print(file=err)
        return exit_codes.INTERRUPTED
    except BrokenPipeError:
        return exit_codes.OK
    except Exception as error:
        code = next((code for kind, code in EXIT_CODES if isinstance(error, kind)), None)
        if code is None:
            raise
        print(output.error_line(error), file=err, flush=True)
        return code
