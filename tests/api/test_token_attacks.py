"""The JWT attack matrix (anchors.md B2): every case answers 401/403 and writes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from devhost.azurite import Azurite
from devhost.issuer import DevIssuer
from shared.api.tokens import TokenValidator
from shared.domain.errors import JobsError
from tests.support import AUDIENCE, OTHER_TENANT, TENANT, Api, RequestLog, make_settings

GRAPH = "00000003-0000-0000-c000-000000000000"
UNCONFIGURED_TENANT = "2f8a1c3d-4e5b-4c6d-9e7f-8a9b0c1d2e3f"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _claims(api: Api, **overrides: Any) -> dict[str, Any]:
    token = api.token()
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(overrides)
    return claims


async def _expect_refused(api: Api, log: RequestLog, token: str | None, status: int = 401,
                          headers: dict[str, str] | None = None) -> None:
    await api.call("GET", "/api/jobs")  # warm clients and the JWKS cache outside the measured window
    mark = log.mark()
    body = {"jobType": "probe", "subjectId": str(uuid.uuid4()), "payload": {}}
    res = await api.call("POST", "/api/jobs", body, token=token, headers=headers)
    assert res.status == status, res.body
    assert res.code in ("AUTH_TOKEN_MISSING", "AUTH_TOKEN_INVALID", "AUTH_PERMISSION_MISSING")
    assert log.since(mark) == []  # refused before any storage call


async def test_01_alg_none_is_refused(api: Api, request_log: RequestLog) -> None:
    token = _unsigned({"alg": "none", "typ": "JWT"}, _claims(api)) + "."
    await _expect_refused(api, request_log, token)


async def test_02_hs256_signed_with_the_rsa_public_key_is_refused(api: Api, request_log: RequestLog,
                                                                   issuer: DevIssuer) -> None:
    public_pem = issuer._key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}, _claims(api))
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    await _expect_refused(api, request_log, f"{signing_input}.{_b64(signature)}")


async def test_03_foreign_key_with_a_valid_kid_is_refused(api: Api, request_log: RequestLog, issuer: DevIssuer,
                                                          tmp_path: Path) -> None:
    forger = DevIssuer(tmp_path / "forger")
    token = forger.mint(tenant=TENANT, audience=AUDIENCE, oid=str(uuid.uuid4()), scopes=["Jobs.Submit"],
                        headers={"kid": issuer.kid})
    await _expect_refused(api, request_log, token)


class _CountingJwks(BaseHTTPRequestHandler):
    hits = 0
    body = b"{}"

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def counting_jwks(issuer: DevIssuer) -> Iterator[tuple[str, type[_CountingJwks]]]:
    handler = type("Handler", (_CountingJwks,), {"hits": 0, "body": json.dumps(issuer.jwks()).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/keys", handler
    finally:
        server.shutdown()


async def test_04_a_flood_of_unknown_kids_costs_at_most_one_fetch_per_cooldown(
        azurite: Azurite, issuer: DevIssuer, counting_jwks: tuple[str, type[_CountingJwks]]) -> None:
    url, handler = counting_jwks
    validator = TokenValidator(make_settings(azurite.connection_string, JOBS_AUTH_JWKS_URI=url))
    good = issuer.mint(tenant=TENANT, audience=AUDIENCE, oid=str(uuid.uuid4()), scopes=["Jobs.Read"])
    await validator.validate(f"Bearer {good}")
    assert handler.hits == 1
    started = time.monotonic()
    for _ in range(1000):
        forged = issuer.mint(tenant=TENANT, audience=AUDIENCE, oid=str(uuid.uuid4()), headers={"kid": uuid.uuid4().hex})
        with pytest.raises(JobsError):
            await validator.validate(f"Bearer {forged}")
    windows = 1 + int((time.monotonic() - started) // 30)  # 30 s cooldown windows the flood spanned
    assert handler.hits <= 1 + windows  # the first fetch, and at most one forced refresh per window


@pytest.mark.parametrize("kid", ["../../x", "' OR 1=1 --", "k" * 10_000, "", "\u0000"])
async def test_05_hostile_kid_values_are_refused(api: Api, request_log: RequestLog, issuer: DevIssuer,
                                                 kid: str) -> None:
    token = issuer.mint(tenant=TENANT, audience=AUDIENCE, oid=str(uuid.uuid4()), scopes=["Jobs.Submit"],
                        headers={"kid": kid})
    await _expect_refused(api, request_log, token)


@pytest.mark.parametrize("claims", [
    {"exp": int(time.time()) - 61 - 60}, {"nbf": int(time.time()) + 600}, {"iat": int(time.time()) + 600},
])
async def test_06_expired_or_not_yet_valid_tokens_are_refused(api: Api, request_log: RequestLog,
                                                              claims: dict[str, int]) -> None:
    await _expect_refused(api, request_log, api.token(extra_claims=claims))


@pytest.mark.parametrize("audience", [GRAPH, "api://another-api", ""])
async def test_07_wrong_audience_is_refused(api: Api, request_log: RequestLog, audience: str) -> None:
    await _expect_refused(api, request_log, api.token(extra_claims={"aud": audience}))


@pytest.mark.parametrize("iss", [
    f"https://login.microsoftonline.com/{UNCONFIGURED_TENANT}/v2.0",
    "https://login.microsoftonline.com/",
    f"https://login.microsoftonline.com/{TENANT}/v2.0/extra",
    f"https://login.microsoftonline.com/{TENANT}",
    f"https://sts.windows.net/{TENANT}",
])
async def test_08_wrong_or_partial_issuer_is_refused(api: Api, request_log: RequestLog, iss: str) -> None:
    await _expect_refused(api, request_log, api.token(extra_claims={"iss": iss}))


@pytest.mark.parametrize("tid", [OTHER_TENANT, "not-a-guid", UNCONFIGURED_TENANT])
async def test_09_tid_other_than_the_issuers_tenant_is_refused(api: Api, request_log: RequestLog, tid: str) -> None:
    await _expect_refused(api, request_log, api.token(extra_claims={"tid": tid}))


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat", "iss", "aud", "tid", "oid"])
async def test_10_each_required_claim_missing_is_refused(api: Api, request_log: RequestLog, claim: str) -> None:
    await _expect_refused(api, request_log, api.token(extra_claims={claim: None}))


async def test_11_crit_header_is_refused(api: Api, request_log: RequestLog, issuer: DevIssuer) -> None:
    token = issuer.mint(tenant=TENANT, audience=AUDIENCE, oid=str(uuid.uuid4()), scopes=["Jobs.Submit"],
                        headers={"crit": ["x-unknown"], "x-unknown": 1})
    await _expect_refused(api, request_log, token)


@pytest.mark.parametrize(("scopes", "roles"), [((), ()), (("Jobs.Read",), ()), (("User.Read",), ("Other.Role",))])
async def test_12_valid_token_without_the_permission_is_forbidden(api: Api, request_log: RequestLog,
                                                                  scopes: tuple[str, ...],
                                                                  roles: tuple[str, ...]) -> None:
    await _expect_refused(api, request_log, api.token(scopes=scopes, roles=roles), status=403)


@pytest.mark.parametrize("raw", ["a.b.c.d.e", "%%%.###.$$$", "", "eyJhbGciOiJSUzI1NiJ9"])
async def test_13_malformed_tokens_are_refused(api: Api, request_log: RequestLog, raw: str) -> None:
    await _expect_refused(api, request_log, raw)


async def test_13_bearer_without_token_and_two_authorization_headers_are_refused(
        api: Api, request_log: RequestLog) -> None:
    await _expect_refused(api, request_log, None, headers={"authorization": "Bearer"})
    good = api.token()
    await _expect_refused(api, request_log, None, headers={"authorization": f"Bearer {good}, Bearer {good}"})
    await _expect_refused(api, request_log, None, headers={"authorization": f"Basic {good}"})


async def test_14_oversized_token_is_refused_before_decoding(api: Api, request_log: RequestLog) -> None:
    huge = api.token(extra_claims={"pad": "x" * 20_000})
    await _expect_refused(api, request_log, huge)


async def test_v1_tokens_of_a_configured_tenant_are_accepted(api: Api) -> None:
    token = api.issuer.mint(tenant=TENANT, audience=AUDIENCE, oid=str(uuid.uuid4()), scopes=["Jobs.Read"],
                            version="1.0")
    assert (await api.call("GET", "/api/jobs", token=token)).status == 200
