"""What the command line prints: human text by default, the server's JSON with ``--json``.

Tables go through rich, which sizes the columns to their contents. On a terminal they fit its
width and the header is bold; elsewhere (pipes, files, tests) they are plain text with no width
limit and no trailing blanks, one line per job, so ``grep`` and ``awk`` see whole rows.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from client.errors import (
    AuthenticationError,
    ConfigurationError,
    JobsApiError,
    JobsClientError,
    JobsConnectionError,
    WaitTimeoutError,
)
from client.models import Accepted, HistoryEntry, JobStatus


def print_json(value: Any, stream: TextIO) -> None:
    print(json.dumps(value, indent=2, sort_keys=False, default=str), file=stream)


def accepted_line(accepted: Accepted) -> str:
    text = f"{accepted.job_id} {accepted.status}"
    return f"{text} (replayed: this job was submitted before)" if accepted.replayed else text


def percent(status: JobStatus) -> str:
    return f" {status.percent_complete}%" if status.percent_complete is not None else ""


def outcome_text(status: JobStatus) -> str:
    if status.outcome is None or not (status.outcome.code or status.outcome.text):
        return ""
    return f"{status.outcome.code or ''}: {status.outcome.text}".strip(": ")


def status_line(status: JobStatus) -> str:
    """One line: id, status, percent, and how it ended or what it is doing."""
    parts = [f"{status.job_id} {status.status}{percent(status)}"]
    if status.cancel_requested and not status.is_terminal:
        parts.append("(cancel requested)")
    detail = outcome_text(status) if status.is_terminal else (status.progress_message or "")
    if detail:
        parts.append(detail)
    return " ".join(parts)


def _when(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def status_details(status: JobStatus) -> list[str]:
    rows: list[tuple[str, Any]] = [
        ("job", status.job_id), ("type", status.job_type), ("subject", status.subject_id),
        ("status", f"{status.status}{percent(status)}"), ("progress", status.progress_message),
        ("cancel", "requested" if status.cancel_requested else None),
        ("attempt", f"{status.attempt}/{status.max_attempts}" if status.attempt is not None else None),
        ("run", status.run), ("created", _when(status.created_at)), ("updated", _when(status.last_updated_at)),
        ("not before", _when(status.not_before) if status.status == "Queued" else None),
        ("completed", _when(status.completed_at)), ("outcome", outcome_text(status) or None),
        ("result", json.dumps(status.result) if status.result is not None else None),
        ("correlation", status.correlation_id), ("key", status.idempotency_key),
    ]
    lines = [f"{name:<12}{value}" for name, value in rows if value not in (None, "")]
    if status.history is not None:
        lines.append("history")
        lines.extend(f"  {history_line(entry)}" for entry in status.history[:1])
        if status.history_omitted:
            lines.append(f"  ... {status.history_omitted} older entries omitted by the server's history bound")
        lines.extend(f"  {history_line(entry)}" for entry in status.history[1:])
    return lines


def history_line(entry: HistoryEntry) -> str:
    text = f"v{entry.version} {_when(entry.at)} {entry.from_status or '-'} -> {entry.to_status or '-'}"
    if entry.attempt is not None:
        text += f" (attempt {entry.attempt})"
    return " ".join(part for part in (text, entry.reason or "", entry.message or "") if part)


def utc_text(value: datetime | None) -> str:
    """A time as the API writes it: UTC ISO 8601 with a ``Z`` suffix and millisecond precision."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# Wide enough that no row of a table printed to a pipe or file is ever wrapped.
UNLIMITED_WIDTH = 100_000
TABLE_COLUMNS = ("JOB ID", "STATUS", "TYPE", "CREATED", "SUBJECT")


def jobs_table(items: Iterable[JobStatus]) -> Table:
    """The jobs as a rich table: no borders, columns two spaces apart."""
    grid = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    for name in TABLE_COLUMNS:
        grid.add_column(name, no_wrap=name in {"JOB ID", "STATUS", "CREATED"})
    for item in items:
        grid.add_row(item.job_id, item.status, item.job_type or "", utc_text(item.created_at), item.subject_id or "")
    return grid


def plain_console(stream: TextIO, width: int = UNLIMITED_WIDTH) -> Console:
    """A console that writes text as it is: no colours, and no markup, emoji codes or highlighting
    read into values (a job type like ``[x]`` or ``:y:`` prints as it is)."""
    return Console(file=stream, width=width, color_system=None, markup=False, emoji=False, highlight=False)


def table(items: Iterable[JobStatus]) -> list[str]:
    """The table's lines as plain text (for pipes and files)."""
    buffer = io.StringIO()
    plain_console(buffer).print(jobs_table(items))
    return [line.rstrip() for line in buffer.getvalue().splitlines()]


def print_table(items: Iterable[JobStatus], stream: TextIO) -> None:
    """The table, fitted to the terminal with a bold header on a TTY, else plain lines."""
    if stream.isatty():
        Console(file=stream, markup=False, emoji=False, highlight=False).print(jobs_table(items))
    else:
        print("\n".join(table(items)), file=stream)
    stream.flush()


ERROR_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (JobsConnectionError, "CONNECTION_FAILED"), (WaitTimeoutError, "WAIT_TIMEOUT"),
    (AuthenticationError, "AUTHENTICATION_FAILED"), (ConfigurationError, "CONFIGURATION_INVALID"),
    (JobsClientError, "CLIENT_ERROR"),
)


def error_line(error: BaseException) -> str:
    """``code: detail (correlation id …)`` for everything the client raises on purpose."""
    if isinstance(error, JobsApiError):
        lines = [str(error)]
        lines.extend(f"  {item.get('field', '?')}: {item.get('message', '')}" for item in error.errors)
        return "\n".join(lines)
    code = next((code for kind, code in ERROR_CODES if isinstance(error, kind)), type(error).__name__)
    correlation_id = getattr(error, "correlation_id", None)
    text = f"{code}: {error}"
    return f"{text} (correlation id {correlation_id})" if correlation_id else text
