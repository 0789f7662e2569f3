"""The persistent token cache: a private file (0600 in a 0700 folder), written only when changed."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import msal  # type: ignore[import-untyped]

from client.token_cache import PersistentTokenCache, write_private

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
