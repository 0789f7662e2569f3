"""The local development token issuer: Entra ID-shaped RS256 access tokens and their JWKS.

Locally there is no Entra ID tenant to sign tokens, so devhost keeps its own RSA key (in
``<project>/.devhost``, git-ignored, mode 0600) and mints tokens with the claims the app checks
(iss, aud, tid, oid, scp, roles, ...). The app verifies them exactly as it verifies real ones, only
against this issuer's JWKS (served by the devhost at ``/.devhost/keys``, or by ``serve_jwks`` for
tests that call the app without a host).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devhost.azurite import PROJECT_ROOT

KEY_FILE = "issuer-key.pem"
DEFAULT_KEY_DIR_NAME = ".devhost"
# Fixed identities for development tokens: not secrets, just recognisable values.
DEV_CLIENT_ID = "d3b07384-d9a0-4c9b-8f6e-0de7c0de0001"
DEV_USER_OID = "d3b07384-d9a0-4c9b-8f6e-0de7c0de0002"
ISSUER_V2 = "https://login.microsoftonline.com/{tenant}/v2.0"
ISSUER_V1 = "https://sts.windows.net/{tenant}/"


def default_key_dir(project_dir: Path = PROJECT_ROOT) -> Path:
    """Where the issuer key lives for a project: ``<project>/.devhost``."""
    return project_dir / DEFAULT_KEY_DIR_NAME


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 thumbprint of an RSA JWK: SHA-256 over the canonical JSON of e, kty, n."""
    canonical = json.dumps({"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _create_key_file(path: Path) -> None:
    """Write a new key atomically: another process creating it at the same time wins cleanly."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, pem)
    finally:
        os.close(descriptor)
    try:
        os.link(temporary, path)  # fails if the file appeared meanwhile: then keep that one
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    """Load the issuer's private key, generating a 2048-bit one the first time."""
    if not path.exists():
        _create_key_file(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


class DevIssuer:
    """Signs development access tokens with a key kept in ``key_dir``."""

    def __init__(self, key_dir: Path) -> None:
        self.key_dir = key_dir
        self._key = load_or_create_key(key_dir / KEY_FILE)
        numbers = self._key.public_key().public_numbers()
        self._public_jwk = {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
        self.kid = jwk_thumbprint(self._public_jwk)

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWKS document (never the private parts)."""
        return {"keys": [{**self._public_jwk, "use": "sig", "kid": self.kid, "alg": "RS256"}]}

    def mint(
        self,
        *,
        tenant: str,
        audience: str,
        oid: str,
        scopes: Sequence[str] = (),
        roles: Sequence[str] = (),
        lifetime: int = 3600,
        version: str = "2.0",
        extra_claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """An RS256 access token shaped like Entra ID's; ``extra_claims`` values of None remove a claim."""
        if version not in ("1.0", "2.0"):
            raise ValueError(f"token version must be '1.0' or '2.0', not {version!r}")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": (ISSUER_V2 if version == "2.0" else ISSUER_V1).format(tenant=tenant),
            "aud": audience,
            "tid": tenant,
            "oid": oid,
            "sub": oid,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "ver": version,
            "azp": DEV_CLIENT_ID,
        }
        if version == "1.0":
            claims["appid"] = DEV_CLIENT_ID  # v1.0 tokens name the client in appid
        if scopes:
            claims["scp"] = " ".join(scopes)
        if roles:
            claims["roles"] = list(roles)
        for name, value in (extra_claims or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid, **(headers or {})})


def _handler(body: bytes) -> type[BaseHTTPRequestHandler]:
    class JwksHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/keys":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return JwksHandler


@contextmanager
def serve_jwks(issuer: DevIssuer, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve the issuer's JWKS from a background thread; yields ``http://host:port/keys``."""
    server = ThreadingHTTPServer((host, port), _handler(json.dumps(issuer.jwks()).encode("utf-8")))
    thread = threading.Thread(target=server.serve_forever, name="devhost-jwks", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/keys"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
