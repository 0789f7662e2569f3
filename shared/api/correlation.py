"""The correlation id: from the caller's ``x-correlation-id``, else the W3C traceparent's trace id,
else new. It flows into the entity, the message, every log line, the outcome and every response."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

HEADER = "x-correlation-id"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def correlation_id_from(headers: Mapping[str, str]) -> uuid.UUID:
    supplied = (headers.get(HEADER) or "").strip()
    if supplied and len(supplied) <= 64:
        try:
            return uuid.UUID(supplied)
        except ValueError:
            pass  # not a GUID: the contract carries GUIDs only, so fall through
    match = _TRACEPARENT.match((headers.get("traceparent") or "").strip().lower())
    if match and set(match.group(1)) != {"0"}:
        return uuid.UUID(hex=match.group(1))
    return uuid.uuid4()
