"""Token providers: a ``TokenProvider`` is any callable returning a bearer token.

- ``DevTokenProvider``: mints a token from the project's development issuer (devhost), for a local
  ``python -m devhost``; tenant and audience default like ``python -m devhost token``.
- ``ClientCredentialsProvider`` / ``DeviceCodeProvider`` (client.msal_auth): Microsoft Entra ID
  through MSAL, for a service and for a person, with a persistent token cache.

``build_token_provider`` picks one for an auth mode and the settings.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from client.errors import ConfigurationError
from client.settings import DEFAULT_DEV_SCOPES, AuthMode, ClientSettings

TokenProvider = Callable[[], str]
Prompt = Callable[[str], None]
RENEW_BEFORE_SECONDS = 300


def print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class StaticTokenProvider:
    """A fixed token (tests, or a token obtained elsewhere)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self) -> str:
        return self.token


class DevTokenProvider:
    """Development tokens from devhost's issuer (its key in ``<project>/.devhost``).

    Only a devhost (or an app whose JOBS_AUTH_JWKS_URI points at one) accepts them. A token is
    reused until ``RENEW_BEFORE_SECONDS`` before it expires.
    """

    def __init__(
        self, *, tenant: str | None = None, audience: str | None = None,
        scopes: Sequence[str] = DEFAULT_DEV_SCOPES, roles: Sequence[str] = (), oid: str | None = None,
        project_dir: Path | None = None, lifetime: int = 3600,
    ) -> None:
        self.tenant = tenant
        self.audience = audience
        self.scopes = tuple(scopes)
        self.roles = tuple(roles)
        self.oid = oid
        self.project_dir = project_dir
        self.lifetime = lifetime
        self._token: str | None = None
        self._expires = 0.0

    def __call__(self) -> str:
        if self._token is None or time.time() >= self._expires - RENEW_BEFORE_SECONDS:
            self._expires = time.time() + self.lifetime
            self._token = self._mint()
        return self._token

    def _mint(self) -> str:
        try:
            from devhost.azurite import PROJECT_ROOT  # noqa: PLC0415 - only dev auth needs the devhost package
            from devhost.cli import setting_default  # noqa: PLC0415
            from devhost.errors import DevHostError  # noqa: PLC0415
            from devhost.issuer import DEV_USER_OID, DevIssuer, default_key_dir  # noqa: PLC0415
        except ImportError as error:
            raise ConfigurationError(
                f"dev auth mints tokens with the project's devhost package, which cannot be imported ({error}); "
                "run from the project folder or install it with `pip install -e .`") from error
        project_dir = self.project_dir or PROJECT_ROOT
        try:
            tenant = self.tenant or setting_default("JOBS_AUTH_TENANTS", project_dir)
            audience = self.audience or setting_default("JOBS_AUTH_AUDIENCES", project_dir)
            issuer = DevIssuer(default_key_dir(project_dir))
        except (DevHostError, OSError, ValueError) as error:
            raise ConfigurationError(f"dev auth: {error}") from error
        if not tenant or not audience:
            raise ConfigurationError("dev auth: no tenant/audience: set JOBS_AUTH_TENANTS and JOBS_AUTH_AUDIENCES "
                                     "(or local.settings.json)")
        return issuer.mint(tenant=tenant, audience=audience, oid=self.oid or DEV_USER_OID, scopes=self.scopes,
                           roles=self.roles, lifetime=self.lifetime)


def build_token_provider(
    mode: AuthMode, settings: ClientSettings, *, prompt: Prompt = print_to_stderr,
) -> TokenProvider:
    """The provider for ``mode``; settings are checked now, tokens are fetched on first use."""
    if mode == "dev":
        return DevTokenProvider(tenant=settings.dev_tenant, audience=settings.dev_audience, scopes=settings.dev_scopes,
                                roles=settings.dev_roles, oid=settings.dev_oid)
    from client import msal_auth  # noqa: PLC0415 - dev-only runs never load the MSAL code

    if mode == "client-credentials":
        return msal_auth.ClientCredentialsProvider(settings)
    return msal_auth.DeviceCodeProvider(settings, prompt=prompt)
