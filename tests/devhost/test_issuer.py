"""The development issuer: key handling, claims, and verification against the served JWKS."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import jwt
import pytest

from devhost.issuer import DEV_CLIENT_ID, KEY_FILE, DevIssuer, serve_jwks
from tests.devhost.conftest import HostFactory

TENANT = "5e1f3c2a-7b4d-4c8e-9a6f-0d2b1c3e4f5a"
AUDIENCE = "api://background-jobs-local"
OID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("issuer") / "nested" / ".devhost"


@pytest.fixture(scope="module")
def dev_issuer(key_dir: Path) -> DevIssuer:
    return DevIssuer(key_dir)


def verify(token: str, jwks_url: str, **options: Any) -> dict[str, Any]:
    signing_key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
    return dict(jwt.decode(token, signing_key.key, algorithms=["RS256"], audience=AUDIENCE, **options))


def test_key_is_created_private_and_reused(dev_issuer: DevIssuer, key_dir: Path) -> None:
    path = key_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert DevIssuer(key_dir).kid == dev_issuer.kid  # loaded, not regenerated
    assert not [p for p in key_dir.iterdir() if p.name != KEY_FILE]  # no temporary files left


def test_jwks_is_public_with_rfc7638_kid(dev_issuer: DevIssuer) -> None:
    (key,) = dev_issuer.jwks()["keys"]
    assert set(key) == {"kty", "use", "kid", "n", "e", "alg"}
    assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")
    canonical = json.dumps({"e": key["e"], "kty": "RSA", "n": key["n"]}, separators=(",", ":"))
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    assert key["kid"] == expected == dev_issuer.kid


def test_v2_token_verifies_against_served_jwks(dev_issuer: DevIssuer) -> None:
    token = dev_issuer.mint(tenant=TENANT, audience=AUDIENCE, oid=OID, scopes=["Jobs.Submit", "Jobs.Read"])
    assert jwt.get_unverified_header(token)["kid"] == dev_issuer.kid
    with serve_jwks(dev_issuer) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/keys")
        claims = verify(token, url, issuer=f"https://login.microsoftonline.com/{TENANT}/v2.0")
    assert claims["tid"] == TENANT and claims["oid"] == OID and claims["sub"] == OID
    assert claims["scp"] == "Jobs.Submit Jobs.Read"
    assert claims["ver"] == "2.0" and claims["azp"] == DEV_CLIENT_ID
    assert "roles" not in claims
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]


def test_v1_roles_and_claim_overrides(dev_issuer: DevIssuer) -> None:
    token = dev_issuer.mint(
        tenant=TENANT, audience=AUDIENCE, oid=OID, roles=["Jobs.Admin"], version="1.0", lifetime=60,
        extra_claims={"azp": None, "name": "Dev User"}, headers={"x-test": "1"},
    )
    with serve_jwks(dev_issuer) as url:
        claims = verify(token, url, issuer=f"https://sts.windows.net/{TENANT}/")
    assert claims["roles"] == ["Jobs.Admin"] and "scp" not in claims
    assert "azp" not in claims and claims["name"] == "Dev User" and claims["ver"] == "1.0"
    assert jwt.get_unverified_header(token)["x-test"] == "1"


def test_expired_token_is_rejected(dev_issuer: DevIssuer) -> None:
    token = dev_issuer.mint(tenant=TENANT, audience=AUDIENCE, oid=OID, lifetime=-10)
    with serve_jwks(dev_issuer) as url, pytest.raises(jwt.ExpiredSignatureError):
        verify(token, url)


async def test_devhost_serves_its_issuer_keys(start_host: HostFactory, project_dir: Path) -> None:
    host = await start_host()
    issuer = DevIssuer(project_dir / ".devhost")  # the host's default key dir for this project
    token = issuer.mint(tenant=TENANT, audience=AUDIENCE, oid=OID)
    claims = await asyncio.to_thread(verify, token, f"{host.base_url}/.devhost/keys")
    assert claims["oid"] == OID
