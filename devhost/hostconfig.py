"""host.json: the HTTP route prefix, the function timeout and the queue listener options.

Defaults and limits are those of the Functions host and the Storage Queues extension 5.x, so a
host.json that works here behaves the same in Azure. Keys are matched case-insensitively, as .NET
configuration does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devhost.errors import DevHostError
from devhost.settings import read_json_object

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$")
MIN_POLLING_INTERVAL = 0.1
DEFAULT_FUNCTION_TIMEOUT = 30 * 60.0


def parse_timespan(text: str) -> float:
    """Parse a .NET TimeSpan such as ``00:01:00``, ``00:00:00.250`` or ``1.02:00:00`` into seconds."""
    match = _TIMESPAN.match(text.strip())
    if match is None:
        raise DevHostError(f"invalid TimeSpan {text!r}: expected [d.]hh:mm:ss[.fff]")
    days, hours, minutes, seconds, fraction = match.groups()
    if int(minutes) > 59 or int(seconds) > 59:
        raise DevHostError(f"invalid TimeSpan {text!r}")
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float(f"0.{fraction}") if fraction else 0.0)


@dataclass(frozen=True)
class QueueOptions:
    """``extensions.queues`` of host.json, with the extension's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostConfig:
    """What the host reads from host.json; ``function_timeout`` None means no limit."""

    route_prefix: str = "api"
    function_timeout: float | None = DEFAULT_FUNCTION_TIMEOUT
    queues: QueueOptions = QueueOptions()


def _get(section: Mapping[str, Any], key: str) -> Any:
    for name, value in section.items():
        if name.lower() == key.lower():
            return value
    return None


def _section(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _get(parent, key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DevHostError(f"host.json: {key!r} must be an object")
    return value


def _int(section: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = _get(section, key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DevHostError(f"host.json: queues.{key} must be an integer in {low}..{high}, not {value!r}")
    return value


def parse_queue_options(section: Mapping[str, Any]) -> QueueOptions:
    """Validate ``extensions.queues`` and fill in the extension's defaults."""
    batch_size = _int(section, "batchSize", 16, 1, 32)
    threshold = _int(section, "newBatchThreshold", batch_size // 2, 0, 10_000)
    polling = _get(section, "maxPollingInterval")
    max_polling = 60.0 if polling is None else parse_timespan(str(polling))
    if max_polling < MIN_POLLING_INTERVAL:
        raise DevHostError("host.json: queues.maxPollingInterval must be at least 00:00:00.100")
    visibility = _get(section, "visibilityTimeout")
    encoding = str(_get(section, "messageEncoding") or "base64").lower()
    if encoding not in ("base64", "none"):
        raise DevHostError(f"host.json: queues.messageEncoding must be 'base64' or 'none', not {encoding!r}")
    return QueueOptions(
        batch_size=batch_size,
        new_batch_threshold=threshold,
        max_polling_interval=max_polling,
        visibility_timeout=0.0 if visibility is None else parse_timespan(str(visibility)),
        max_dequeue_count=_int(section, "maxDequeueCount", 5, 1, 1_000_000),
        message_encoding=encoding,
    )


def _function_timeout(value: Any) -> float | None:
    if value is None:
        return DEFAULT_FUNCTION_TIMEOUT
    if str(value).strip() == "-1":
        return None
    return parse_timespan(str(value))


def parse_host_config(document: Mapping[str, Any]) -> HostConfig:
    """Build a HostConfig from a parsed host.json document."""
    extensions = _section(document, "extensions")
    prefix = _get(_section(extensions, "http"), "routePrefix")
    return HostConfig(
        route_prefix="api" if prefix is None else str(prefix).strip("/"),
        function_timeout=_function_timeout(_get(document, "functionTimeout")),
        queues=parse_queue_options(_section(extensions, "queues")),
    )


def load_host_config(project_dir: Path) -> HostConfig:
    """Read ``host.json`` in the project folder (all defaults when it is missing)."""
    document = read_json_object(project_dir / "host.json")
    return HostConfig() if document is None else parse_host_config(document)
