"""Bearer-token validation (Microsoft Entra ID access tokens) with PyJWT, in code.

Rules: RS256 only; the token's issuer must be exactly the v2 or v1 issuer of a configured
tenant; ``aud`` one of JOBS_AUTH_AUDIENCES; ``tid`` equal to the issuer's tenant; exp/nbf/iat
checked with a small leeway; required claims present; ``crit`` refused; size capped before any
parsing. Signing keys come from the tenant's JWKS (or JOBS_AUTH_JWKS_URI), cached by PyJWT's
PyJWKClient, whose refetch on an unknown ``kid`` is bounded by a cooldown.

There is no switch that turns this off.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from typing import Any
from urllib.parse import urlparse

import jwt
from jwt import PyJWKClient

from shared.config import Settings
from shared.domain.errors import ErrorCode, JobsError
from shared.domain.principal import PERMISSIONS, Principal

logger = logging.getLogger("jobs.auth")

MAX_TOKEN_BYTES = 16 * 1024
LEEWAY_SECONDS = 60
REQUIRED_CLAIMS = ["exp", "nbf", "iat", "iss", "aud", "tid", "oid"]
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")

def issuers_for(tenant: str) -> tuple[str, str]:
    return f"https://login.microsoftonline.com/{tenant}/v2.0", f"https://sts.windows.net/{tenant}/"


def _jwks_uri_allowed(uri: str) -> bool:
    """PyJWKClient fetches http(s) only; plain http is accepted for loopback development issuers."""
    parsed = urlparse(uri)
    if parsed.scheme == "https":
        return True
    if parsed.scheme != "http" or not parsed.hostname:
        return False
    try:
        return ipaddress.ip_address(parsed.hostname).is_loopback
    except ValueError:
        return parsed.hostname == "localhost"


class TokenValidator:
    def __init__(self, settings: Settings):
        if not settings.auth_tenants or not settings.auth_audiences:
            logger.error("JOBS_AUTH_TENANTS and JOBS_AUTH_AUDIENCES must be set; every token will be refused")
        self.audiences = list(settings.auth_audiences)
        self.issuers: dict[str, str] = {}
        for tenant in settings.auth_tenants:
            for issuer in issuers_for(tenant):
                self.issuers[issuer] = tenant
        override = settings.auth_jwks_uri
        if override and not _jwks_uri_allowed(override):
            raise ValueError("JOBS_AUTH_JWKS_URI must be https (or http on loopback)")
        by_uri: dict[str, PyJWKClient] = {}
        self._clients: dict[str, PyJWKClient] = {}
        for tenant in settings.auth_tenants:
            uri = override or f"https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys"
            if uri not in by_uri:
                by_uri[uri] = PyJWKClient(uri, cache_keys=False, lifespan=3600, timeout=10, cooldown_duration=30)
            self._clients[tenant] = by_uri[uri]

    async def validate(self, authorization: str | None) -> Principal:
        token = _bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _invalid("unparseable token") from exc
        if header.get("alg") != "RS256":
            raise _invalid("algorithm not allowed")
        if "crit" in header:
            raise _invalid("critical header extensions are not supported")
        tenant = self.issuers.get(str(unverified.get("iss", "")))
        if tenant is None:
            raise _invalid("issuer not accepted")
        try:
            signing_key = await asyncio.to_thread(self._clients[tenant].get_signing_key_from_jwt, token)
            claims: dict[str, Any] = jwt.decode(
                token, signing_key.key, algorithms=["RS256"], audience=self.audiences,
                issuer=list(issuers_for(tenant)), leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS, "verify_signature": True, "strict_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise _invalid(type(exc).__name__) from exc
        return _principal(claims, tenant)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise JobsError(ErrorCode.AUTH_TOKEN_MISSING)
    if len(authorization) > MAX_TOKEN_BYTES + 7:
        raise _invalid("token too large")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise JobsError(ErrorCode.AUTH_TOKEN_MISSING)
    if not _JWT_SHAPE.match(token):
        raise _invalid("not a compact JWS")
    return token


def _principal(claims: dict[str, Any], tenant: str) -> Principal:
    tid, oid = str(claims.get("tid", "")).lower(), str(claims.get("oid", "")).lower()
    if tid != tenant or not _GUID.match(tid):
        raise _invalid("tid does not match the issuer")
    if not _GUID.match(oid):
        raise _invalid("oid is not a GUID")
    scopes = str(claims.get("scp", "")).split() if isinstance(claims.get("scp"), str) else []
    roles = [r for r in claims.get("roles", []) if isinstance(r, str)] if isinstance(claims.get("roles"), list) else []
    permissions = frozenset(p for p in (*scopes, *roles) if p in PERMISSIONS)
    return Principal(tenant_id=tid, object_id=oid, permissions=permissions)


def _invalid(reason: str) -> JobsError:
    logger.info("token refused: %s", reason)
    return JobsError(ErrorCode.AUTH_TOKEN_INVALID)
