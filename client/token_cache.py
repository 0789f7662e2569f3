"""A persistent MSAL token cache through msal-extensions: one JSON file, readable by its owner only.

The providers give MSAL a ``PersistedTokenCache`` over a ``FilePersistence``: it rereads the file
when another process changed it and writes each change at once, under msal-extensions'
cross-process lock (``<file>.lockfile``), so two ``jobs`` commands signing in or refreshing at the
same time do not lose each other's tokens.

The file is plain JSON, not encrypted. msal-extensions can encrypt (DPAPI on Windows, the macOS
keychain, libsecret on Linux), but a Linux server or container has no keyring, and there the
unencrypted ``FilePersistence`` is what msal-extensions documents as the fallback; so the file is
protected by its permissions instead: the folder is created 0700, and every write replaces the file
atomically with a new 0600 one, so a reader never sees half a file and a file once made too
permissive is replaced by a private one.

``PersistentTokenCache`` loads and saves a cache that is not persisted by itself (any MSAL
``SerializableTokenCache``), under the same lock; for the ``PersistedTokenCache`` the providers use,
saving finds nothing left to write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Protocol

from msal_extensions import (  # type: ignore[import-untyped]  # msal-extensions ships no type information
    CrossPlatLock,
    FilePersistence,
    PersistedTokenCache,
)
from msal_extensions.persistence import PersistenceNotFound  # type: ignore[import-untyped]

logger = logging.getLogger("jobs.client.cache")
FILE_MODE = 0o600
DIR_MODE = 0o700


class CacheState(Protocol):
    """What this module needs of ``msal.SerializableTokenCache``."""

    has_state_changed: bool

    def serialize(self) -> str: ...

    def deserialize(self, state: str | None) -> None: ...


class PrivateFilePersistence(FilePersistence):  # type: ignore[misc]  # an untyped base class
    """msal-extensions' plain-file persistence, written atomically as a 0600 file in a 0700 folder.

    FilePersistence alone truncates and rewrites the file in place (a reader outside the lock can
    see it half written) and sets 0600 only when it creates the file; an unreadable file makes
    PersistedTokenCache fail every token lookup, where an unreadable cache should just be empty.
    """

    def __init__(self, path: Path) -> None:
        make_private_folder(path.parent)
        super().__init__(str(path))
        self.path = path

    def save(self, content: str) -> None:
        write_private(self.path, content)

    def load(self) -> str:
        """The file's text; an empty cache when it is not a JSON object (it is replaced on the next write)."""
        text: str = super().load()  # PersistenceNotFound when absent, as PersistedTokenCache expects
        try:
            readable = isinstance(json.loads(text), dict)
        except ValueError:
            readable = False
        if not readable:
            logger.warning("ignoring the unreadable token cache %s", self.path)
            return "{}"
        return text


class SavedTokenCache(PersistedTokenCache):  # type: ignore[misc]  # an untyped base class
    """PersistedTokenCache whose ``has_state_changed`` means "not in the file yet".

    PersistedTokenCache writes each change as it happens (``add`` writes through ``modify``) but
    leaves the flag set, which would make ``PersistentTokenCache.save`` write the same state again.
    """

    def add(self, event: Any, **kwargs: Any) -> None:
        super().add(event, **kwargs)
        self.has_state_changed = False

    def modify(self, credential_type: Any, old_entry: Any, new_key_value_pairs: Any = None) -> None:
        super().modify(credential_type, old_entry, new_key_value_pairs=new_key_value_pairs)
        self.has_state_changed = False


def persisted_cache(path: Path) -> CacheState:
    """The cache the providers give MSAL: the private file at ``path``, shared safely between processes."""
    cache: CacheState = SavedTokenCache(PrivateFilePersistence(path))
    return cache


def lock_path(path: Path) -> Path:
    """The lock file PersistedTokenCache uses for ``path`` (so explicit loads and saves take the same lock)."""
    return path.with_name(path.name + ".lockfile")


class PersistentTokenCache:
    """A cache state and the file it is kept in, loaded and saved explicitly under the cache's lock."""

    def __init__(self, path: Path, cache: CacheState) -> None:
        self.path = path
        self.cache = cache

    def load(self) -> None:
        """Read the file into the cache (nothing when absent; an unreadable file is ignored)."""
        try:
            with CrossPlatLock(str(lock_path(self.path))):
                text = PrivateFilePersistence(self.path).load()
        except PersistenceNotFound:
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
        persistence = PrivateFilePersistence(self.path)
        with CrossPlatLock(str(lock_path(self.path))):
            persistence.save(self.cache.serialize())
        self.cache.has_state_changed = False
        return True


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) 0700 when absent; an existing folder is left as it is."""
    if not folder.exists():
        folder.mkdir(parents=True, mode=DIR_MODE)


def write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text`` in a file only its owner can read or write."""
    make_private_folder(path.parent)
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
