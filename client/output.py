"""What the command line prints: human text by default, the server's JSON with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

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
        ("completed", _when(status.completed_at)), ("outcome", outcome_text(status) or None),
        ("result", json.dumps(status.result) if status.result is not None else None),
        ("correlation", status.correlation_id), ("key", status.idempotency_key),
    ]
    lines = [f"{name:<12}{value}" for name, value in rows if value not in (None, "")]
    if status.history is not None:
        lines.append("history")
        lines.extend(f"  {history_line(entry)}" for entry in status.history)
    return lines


def history_line(entry: HistoryEntry) -> str:
    text = f"v{entry.version} {_when(entry.at)} {entry.from_status or '-'} -> {entry.to_status or '-'}"
    if entry.attempt is not None:
        text += f" (attempt {entry.attempt})"
    return " ".join(part for part in (text, entry.reason or "", entry.message or "") if part)


def table(items: Iterable[JobStatus]) -> list[str]:
    lines = [f"{'JOB ID':<36}  {'STATUS':<9}  {'TYPE':<14}  {'CREATED':<29}  SUBJECT"]
    for item in items:
        lines.append(f"{item.job_id:<36}  {item.status:<9}  {item.job_type or '':<14}  "
                     f"{_when(item.created_at):<29}  {item.subject_id or ''}")
    return lines


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
