"""A persistent MSAL token cache: one JSON file, readable by its owner only (0600, folder 0700).

Loaded once when a provider starts; saved after each token acquisition, but only when MSAL says the
cache changed. Writes go to a new 0600 file that atomically replaces the old one, so a reader never
sees half a file and a file once made too permissive is replaced by a private one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from pathlib import Path
from typing import Protocol

logger = logging.getLogger("jobs.client.cache")
FILE_MODE = 0o600
DIR_MODE = 0o700


class CacheState(Protocol):
    """What this module needs of ``msal.SerializableTokenCache``."""

    has_state_changed: bool

    def serialize(self) -> str: ...

    def deserialize(self, state: str | None) -> None: ...


class PersistentTokenCache:
    def __init__(self, path: Path, cache: CacheState) -> None:
        self.path = path
        self.cache = cache

    def load(self) -> None:
        """Read the file into the cache (nothing when absent; an unreadable file is ignored)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as error:
            logger.warning("cannot read the token cache %s: %s", self.path, error)
            return
        try:
            self.cache.deserialize(text)
        except ValueError:
            logger.warning("ignoring the unreadable token cache %s", self.path)
        self.cache.has_state_changed = False

    def save(self) -> bool:
        """Write the cache when it changed since the last load or save; True when it wrote."""
        if not self.cache.has_state_changed:
            return False
        write_private(self.path, self.cache.serialize())
        self.cache.has_state_changed = False
        return True


def write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text`` in a file only its owner can read or write."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=DIR_MODE)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)  # whatever the umask
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
