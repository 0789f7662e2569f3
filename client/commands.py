"""The command line's commands: each takes the client, the parsed arguments and the output streams,
prints its result and returns the exit code (errors propagate to client.cli, which prints them)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from client import exit_codes, output
from client.api import JobsClient
from client.errors import ConfigurationError, WaitTimeoutError
from client.models import Accepted, JobStatus
from client.progress import Progress


@dataclass(frozen=True)
class Io:
    stdout: TextIO
    stderr: TextIO
    json: bool


Command = Callable[[JobsClient, argparse.Namespace, Io], int]


def _print(io: Io, text: str) -> None:
    print(text, file=io.stdout, flush=True)


def _show_status(status: JobStatus, io: Io, *, details: bool = False) -> None:
    if io.json:
        output.print_json(status.raw, io.stdout)
    elif details:
        _print(io, "\n".join(output.status_details(status)))
    else:
        _print(io, output.status_line(status))


def _accepted(client: JobsClient, accepted: Accepted, args: argparse.Namespace, io: Io) -> int:
    if getattr(args, "wait", False):
        if not io.json:
            print(output.accepted_line(accepted), file=io.stderr, flush=True)
        return wait_for(client, accepted.job_id, args.timeout, args, io, first_delay=accepted.retry_after)
    if io.json:
        output.print_json(accepted.raw, io.stdout)
    else:
        _print(io, output.accepted_line(accepted))
    return exit_codes.OK


def wait_for(client: JobsClient, job_id: str, timeout: float | None, args: argparse.Namespace, io: Io,
             *, first_delay: float | None = None) -> int:
    """Follow a job to a terminal status with a progress display; the exit code tells how it ended.
    ``first_delay``: the 202's Retry-After after a submit or retry (the first poll waits for it)."""
    try:
        with Progress(io.stderr) as progress:  # ends the live line however the wait ends (Ctrl-C too)
            final = client.wait(job_id, timeout=timeout, on_update=progress.update, sleep=progress.sleep,
                                correlation_id=args.correlation_id, first_delay=first_delay)
    except WaitTimeoutError as error:
        if error.last is not None and io.json:
            _show_status(error.last, io)
        raise
    _show_status(final, io)
    return exit_codes.for_final_status(final.status)


def submit(client: JobsClient, args: argparse.Namespace, io: Io) -> int:
    if args.from_file is not None:
        return submit_from_file(client, args, io)
    if args.type is None or args.subject is None:
        raise ConfigurationError("submit needs --type and --subject (or --from-file FILE)")
    accepted = client.submit(args.type, args.subject, args.payload, correlation_id=args.correlation_id,
                             not_before=args.not_before, delay_seconds=args.delay)
    return _accepted(client, accepted, args, io)


BATCH_SIZE = 100


def submit_from_file(client: JobsClient, args: argparse.Namespace, io: Io) -> int:
    """Each line of a JSON Lines file is one submission; sent in batches of 100. One line printed per
    submission: ``<line> <jobId> <status>[ (replayed)]`` or ``<line> <CODE>: <detail>``; exit 1 if any was refused."""
    lines = _read_lines(args.from_file)
    refused = 0
    for start in range(0, len(lines), BATCH_SIZE):
        chunk = lines[start:start + BATCH_SIZE]
        body = client.submit_batch([job for _, job in chunk], correlation_id=args.correlation_id)
        for (number, _), item in zip(chunk, body.get("items", []), strict=False):
            refused += item.get("status") != 202
            if io.json:
                output.print_json({"line": number, **item}, io.stdout)
            elif item.get("status") == 202:
                replayed = " (replayed)" if item.get("replayed") else ""
                _print(io, f"{number} {item.get('jobId')} {item.get('jobStatus')}{replayed}")
            else:
                problem = item.get("problem") or {}
                _print(io, f"{number} {problem.get('code')}: {problem.get('detail')}")
    return exit_codes.API_ERROR if refused else exit_codes.OK


def _read_lines(path: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line; a line that is not a JSON object is a usage error."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    jobs: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as error:
            raise ConfigurationError(f"{path}:{number}: not JSON: {error}") from None
        if not isinstance(value, dict):
            raise ConfigurationError(f"{path}:{number}: each line must be a JSON object")
        jobs.append((number, value))
    if not jobs:
        raise ConfigurationError(f"{path}: no submissions")
    return jobs


def upload(client: JobsClient, args: argparse.Namespace, io: Io) -> int:
    """Upload a file as a new subject; print its subjectId (ready for ``submit --subject``)."""
    subject = client.upload(args.file, args.kind, correlation_id=args.correlation_id)
    if io.json:
        output.print_json({"subjectId": subject, "kind": args.kind}, io.stdout)
    else:
        _print(io, subject)
    return exit_codes.OK


def events(client: JobsClient, args: argparse.Namespace, io: Io) -> int:
    """Print each JobOutcome event on the outcomes queue, then acknowledge (delete) it."""
    from client.events import event_line, open_queue, read_events  # noqa: PLC0415 - azure-storage-queue: this command only

    queue = open_queue(args.env, args.queue)
    with queue:
        for event, acknowledge in read_events(queue, follow=args.follow):
            if io.json:
                print(json.dumps(event), file=io.stdout, flush=True)
            else:
                _print(io, event_line(event))
            acknowledge()
    return exit_codes.OK


def analyze(client: JobsClient, args: argparse.Namespace, io: Io) -> int:
    accepted = client.enqueue_analysis(args.document, args.type, correlation_id=args.correlation_id)
    return _accepted(client, accepted, args, io)


def status(client: JobsClient, args: argparse.Namespace, io: Io) -> int:
    _show_status(client.status(args.job, history=args.history, correlation_id=args.correlation_id), io, details=True)
    return exit_codes.OK


def result(client: JobsClient, args: argparse.Namespace, io: Io) -> int:
    """The job's output as JSON: to stdout, or to ``-o FILE`` (then one line saying where it went)."""
    body = client.result(args.job, correlation_id=args.correlation_id)
    value = body if io.json else body.get("result", {})
    if args.output is None:
        output.print_json(value, io.stdout)
        return exit_codes.OK
    with Path(args.output).open("w", encoding="utf-8") as file:
        output.print_json(value, file)
    print(f"{args.job} result written to {args.output}", file=io.stderr, flush=True)
    return exit_codes.OK


def wait(client: JobsClient, args: argparse.Namespace, io: Io) -> int:
    return wait_for(client, args.job, args.timeout, args, io)


def cancel(client: JobsClient, args: argparse.Namespace, io: Io) -> int:
    _show_status(client.cancel(args.job, correlation_id=args.correlation_id), io)
    return exit_codes.OK


def retry(client: JobsClient, args: argparse.Namespace, io: Io) -> int:
    return _accepted(client, client.retry(args.job, correlation_id=args.correlation_id), args, io)


def list_jobs(client: JobsClient, args: argparse.Namespace, io: Io) -> int:
    filters: dict[str, Any] = {
        "status": args.status, "job_type": args.type, "subject_id": args.subject, "page_size": args.page_size,
        "correlation_id": args.correlation_id,
    }
    token: str | None = None
    if args.all:
        items = list(client.list(**filters))
    else:
        page = client.list_page(**filters, continuation_token=args.continuation_token)
        items, token = page.items, page.continuation_token
    if io.json:
        body: dict[str, Any] = {"items": [item.raw for item in items]}
        if token:
            body["continuationToken"] = token
        output.print_json(body, io.stdout)
    else:
        output.print_table(items, io.stdout)
        if token:
            print(f"more jobs: add --continuation-token {shlex.quote(token)} (or --all)", file=io.stderr, flush=True)
    return exit_codes.OK


COMMANDS: dict[str, Command] = {
    "submit": submit, "analyze": analyze, "status": status, "wait": wait, "cancel": cancel, "retry": retry,
    "list": list_jobs, "result": result, "upload": upload, "events": events,
}
