"""Client settings from the environment, and the choice of an authentication mode.

Variables (docs/client.md describes each): JOBS_BASE_URL, JOBS_AUTH_MODE; for Entra ID
JOBS_CLIENT_ID, JOBS_CLIENT_SECRET or JOBS_CLIENT_CERTIFICATE_PATH (+ _THUMBPRINT, _PASSWORD),
JOBS_TENANT_ID, JOBS_AUTHORITY_HOST, JOBS_API_SCOPE (client credentials: ``api://<app>/.default``),
JOBS_API_SCOPES (device code: ``api://<app>/Jobs.Submit api://<app>/Jobs.Read``), JOBS_TOKEN_CACHE;
for development tokens JOBS_DEV_SCOPES, JOBS_DEV_ROLES, JOBS_DEV_OID, and JOBS_AUTH_TENANTS /
JOBS_AUTH_AUDIENCES (first entries; else local.settings.json, like ``python -m devhost token``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from client.errors import ConfigurationError
from client.transport import is_loopback_host

AuthMode = Literal["dev", "client-credentials", "device-code"]
AUTH_MODES: tuple[AuthMode, ...] = ("dev", "client-credentials", "device-code")
DEFAULT_BASE_URL = "http://127.0.0.1:7071"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_DEV_SCOPES = ("Jobs.Submit", "Jobs.Read")
CACHE_FILE_NAME = "msal-token-cache.json"


def split_list(value: str | None) -> tuple[str, ...]:
    return tuple(part for part in re.split(r"[\s,]+", value or "") if part)


def _first(value: str | None) -> str | None:
    items = split_list(value)
    return items[0] if items else None


def default_cache_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "jobs-client" / CACHE_FILE_NAME


@dataclass(frozen=True)
class ClientSettings:
    base_url: str = DEFAULT_BASE_URL
    auth_mode: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    certificate_path: Path | None = None
    certificate_thumbprint: str | None = None
    certificate_password: str | None = None
    tenant_id: str | None = None
    authority_host: str = DEFAULT_AUTHORITY_HOST
    api_scope: str | None = None
    api_scopes: tuple[str, ...] = ()
    token_cache_path: Path | None = None
    dev_scopes: tuple[str, ...] = DEFAULT_DEV_SCOPES
    dev_roles: tuple[str, ...] = ()
    dev_oid: str | None = None
    dev_tenant: str | None = None  # first of JOBS_AUTH_TENANTS, as `python -m devhost token` picks it
    dev_audience: str | None = None  # first of JOBS_AUTH_AUDIENCES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClientSettings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        certificate = get("JOBS_CLIENT_CERTIFICATE_PATH")
        cache = get("JOBS_TOKEN_CACHE")
        return cls(
            base_url=get("JOBS_BASE_URL") or DEFAULT_BASE_URL, auth_mode=get("JOBS_AUTH_MODE"),
            client_id=get("JOBS_CLIENT_ID"), client_secret=get("JOBS_CLIENT_SECRET"),
            certificate_path=Path(certificate).expanduser() if certificate else None,
            certificate_thumbprint=get("JOBS_CLIENT_CERTIFICATE_THUMBPRINT"),
            certificate_password=get("JOBS_CLIENT_CERTIFICATE_PASSWORD"), tenant_id=get("JOBS_TENANT_ID"),
            authority_host=(get("JOBS_AUTHORITY_HOST") or DEFAULT_AUTHORITY_HOST).rstrip("/"),
            api_scope=get("JOBS_API_SCOPE"), api_scopes=split_list(get("JOBS_API_SCOPES")),
            token_cache_path=Path(cache).expanduser() if cache else default_cache_path(env),
            dev_scopes=split_list(get("JOBS_DEV_SCOPES")) or DEFAULT_DEV_SCOPES,
            dev_roles=split_list(get("JOBS_DEV_ROLES")), dev_oid=get("JOBS_DEV_OID"),
            dev_tenant=_first(get("JOBS_AUTH_TENANTS")), dev_audience=_first(get("JOBS_AUTH_AUDIENCES")),
        )

    @property
    def has_client_credential(self) -> bool:
        return bool(self.client_secret or self.certificate_path)


def is_loopback_url(base_url: str) -> bool:
    return is_loopback_host(urlsplit(base_url).hostname)


def choose_auth_mode(base_url: str, settings: ClientSettings, requested: str | None = None) -> AuthMode:
    """The requested mode (flag, else JOBS_AUTH_MODE); else dev on loopback, client credentials when
    a secret or certificate is set, else device code."""
    mode = requested or settings.auth_mode
    if mode is not None:
        if mode not in AUTH_MODES:
            raise ConfigurationError(f"unknown auth mode {mode!r}: use one of {', '.join(AUTH_MODES)}")
        return mode
    if is_loopback_url(base_url):
        return "dev"
    return "client-credentials" if settings.has_client_credential else "device-code"
