"""The persistent token cache through msal-extensions: a private file (0600 in a 0700 folder), written when changed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import msal  # type: ignore[import-untyped]
import msal_extensions  # type: ignore[import-untyped]

from client.token_cache import PersistentTokenCache, lock_path, persisted_cache, write_private
from devhost.azurite import PROJECT_ROOT

# A cache state as MSAL serializes it: one access token for one client (a fake token, no secret).
STATE = {
    "AccessToken": {
        "-login.microsoftonline.com-accesstoken-cid-tid-api://jobs-api/.default": {
            "credential_type": "AccessToken", "secret": "fake-access-token", "home_account_id": "",
            "environment": "login.microsoftonline.com", "client_id": "cid", "target": "api://jobs-api/.default",
            "realm": "tid", "token_type": "Bearer", "cached_at": "1700000000", "expires_on": "4000000000",
            "extended_expires_on": "4000000000",
        },
    },
    "Account": {}, "IdToken": {}, "RefreshToken": {}, "AppMetadata": {},
}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_through_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "cache-dir" / "tokens.json"
    first = msal.SerializableTokenCache()
    first.deserialize(json.dumps(STATE))
    first.has_state_changed = True  # as after an acquisition
    assert PersistentTokenCache(path, first).save()

    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    second = msal.SerializableTokenCache()
    PersistentTokenCache(path, second).load()
    tokens = list(second.search(msal.TokenCache.CredentialType.ACCESS_TOKEN))
    assert [t["secret"] for t in tokens] == ["fake-access-token"]
    assert not second.has_state_changed


def test_written_only_when_changed(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    state = msal.SerializableTokenCache()
    cache = PersistentTokenCache(path, state)
    cache.load()  # no file yet: nothing happens
    assert not cache.save() and not path.exists()
    state.deserialize(json.dumps(STATE))
    state.has_state_changed = True
    assert cache.save() and path.exists()
    before = path.stat().st_mtime_ns, path.stat().st_ino
    assert not cache.save()  # unchanged since
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before


def test_a_too_permissive_file_is_replaced_by_a_private_one(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text("{}")
    path.chmod(0o644)
    old_umask = os.umask(0)
    try:
        write_private(path, json.dumps(STATE))
    finally:
        os.umask(old_umask)
    assert mode(path) == 0o600 and json.loads(path.read_text()) == STATE
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.json"]  # no temporary file left behind


def test_an_unreadable_cache_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text("this is not json")
    state = msal.SerializableTokenCache()
    PersistentTokenCache(path, state).load()
    assert list(state.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)) == []


# ---- the cache the providers give MSAL: msal-extensions' PersistedTokenCache over the private file ----

def token_event(token: str, scope: str = "api://jobs-api/.default") -> dict[str, object]:
    """What MSAL hands its cache after a client-credentials acquisition."""
    return {
        "client_id": "cid", "scope": [scope], "environment": "login.microsoftonline.com",
        "token_endpoint": "https://login.microsoftonline.com/tid/oauth2/v2.0/token", "grant_type": "client_credentials",
        "response": {"access_token": token, "token_type": "Bearer", "expires_in": 3600},
    }


def secrets(cache: object) -> list[str]:
    return sorted(t["secret"] for t in cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN))  # type: ignore[attr-defined]


def test_msal_writes_through_msal_extensions_and_another_process_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "cache-dir" / "tokens.json"
    cache = persisted_cache(path)
    assert isinstance(cache, msal_extensions.PersistedTokenCache)
    assert not path.parent.exists() or mode(path.parent) == 0o700
    cache.add(token_event("written-by-msal"))  # type: ignore[attr-defined]  # as MSAL does after a token request

    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert not cache.has_state_changed  # already in the file: an explicit save writes nothing more
    assert not PersistentTokenCache(path, cache).save()
    assert sorted(p.name for p in path.parent.iterdir()) == ["tokens.json"]  # the lock file is gone again
    reader = ("import sys; from pathlib import Path; "
              "from tests.client.test_token_cache import persisted_cache, secrets; "
              "print(secrets(persisted_cache(Path(sys.argv[1]))))")
    done = subprocess.run([sys.executable, "-c", reader, str(path)], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "['written-by-msal']"


def test_an_open_cache_sees_what_another_instance_wrote(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    first, second = persisted_cache(path), persisted_cache(path)
    first.add(token_event("one", "api://one/.default"))  # type: ignore[attr-defined]
    assert secrets(second) == ["one"]
    time.sleep(0.05)  # past the file system's timestamp granularity, so the change is seen as newer
    second.add(token_event("two", "api://two/.default"))  # type: ignore[attr-defined]
    assert secrets(first) == ["one", "two"]  # reread, and second's write kept first's token
    assert secrets(persisted_cache(path)) == ["one", "two"]


def test_writes_wait_for_the_cross_process_lock(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    cache = persisted_cache(path)
    with msal_extensions.CrossPlatLock(str(lock_path(path))):  # another process holds it
        writer = threading.Thread(target=cache.add, args=(token_event("late"),))  # type: ignore[attr-defined]
        writer.start()
        time.sleep(0.6)
        assert not path.exists()  # still waiting
    writer.join(timeout=10)
    assert not writer.is_alive() and secrets(persisted_cache(path)) == ["late"]


def test_an_unreadable_file_is_an_empty_cache_and_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text("this is not json")
    cache = persisted_cache(path)
    assert secrets(cache) == []  # no exception from the token lookup
    cache.add(token_event("fresh"))  # type: ignore[attr-defined]
    assert json.loads(path.read_text())["AccessToken"] and mode(path) == 0o600
