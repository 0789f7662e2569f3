"""App settings: ``local.settings.json`` values, ``%Name%`` expressions and connection strings.

The real host exposes settings to the worker as environment variables, with variables that are
already set taking precedence over ``local.settings.json``; binding expressions such as
``%JOBS_QUEUE%-poison`` are resolved from the same settings, and an unresolved one fails startup.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from devhost.azurite import connection_string
from devhost.errors import DevHostError

_EXPRESSION = re.compile(r"%([^%]+)%")
DEFAULT_CONNECTION = "AzureWebJobsStorage"
DEVELOPMENT_STORAGE = "usedevelopmentstorage=true"
# The emulator's fixed default ports, which is what UseDevelopmentStorage=true means.
DEVELOPMENT_PORTS = (10000, 10001, 10002)


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON file holding an object (None when the file does not exist); DevHostError otherwise."""
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DevHostError(f"cannot read {path}: {error}") from error
    if not isinstance(document, dict):
        raise DevHostError(f"{path}: expected a JSON object")
    return document


def read_settings_file(path: Path) -> dict[str, str]:
    """Return the ``Values`` of a local.settings.json-style file ({} when it does not exist)."""
    document = read_json_object(path)
    if document is None:
        return {}
    if document.get("IsEncrypted"):
        raise DevHostError(f"{path}: encrypted settings are not supported; set IsEncrypted to false")
    values = document.get("Values") or {}
    if not isinstance(values, dict):
        raise DevHostError(f"{path}: 'Values' must be an object")
    return {str(key): "" if value is None else str(value) for key, value in values.items()}


def apply_settings(values: Mapping[str, str], environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put settings into the environment without overriding variables already set.

    Returns the entries actually added, so a host can take them out again when it stops.
    """
    env = os.environ if environ is None else environ
    added: dict[str, str] = {}
    for key, value in values.items():
        if key not in env:
            env[key] = value
            added[key] = value
    return added


def remove_settings(added: Mapping[str, str], environ: MutableMapping[str, str] | None = None) -> None:
    """Undo ``apply_settings`` for entries nobody changed since."""
    env = os.environ if environ is None else environ
    for key, value in added.items():
        if env.get(key) == value:
            del env[key]


def resolve(expression: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace every ``%Name%`` in ``expression`` with that setting; unknown names are an error."""
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise DevHostError(f"unresolved binding expression %{name}% in {expression!r}: no such app setting")
        return env[name]

    return _EXPRESSION.sub(substitute, expression)


def storage_connection_string(connection: str | None, environ: Mapping[str, str] | None = None) -> str:
    """Return the connection string a binding's ``connection`` names (default AzureWebJobsStorage)."""
    env = os.environ if environ is None else environ
    name = connection or DEFAULT_CONNECTION
    value = env.get(name) or env.get(f"ConnectionStrings:{name}")
    if not value:
        raise DevHostError(f"storage connection {name!r} is not configured: set the app setting {name}")
    if value.replace(" ", "").lower().rstrip(";") == DEVELOPMENT_STORAGE:
        return connection_string(*DEVELOPMENT_PORTS)
    return value
