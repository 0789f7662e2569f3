"""Microsoft Entra ID tokens through MSAL: client credentials (a service) and device code (a person).

Both keep MSAL's token cache in a private file (client.token_cache, through msal-extensions), so a
person signs in once and a service reuses its token until it expires. The MSAL application and the
cache file's folder are created on the first token request (creating the application contacts the
authority), which keeps constructing a provider offline and free of side effects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from client.errors import AuthenticationError, ConfigurationError
from client.settings import ClientSettings, default_cache_path
from client.token_cache import CacheState, PersistentTokenCache, persisted_cache

Prompt = Callable[[str], None]
AppFactory = Callable[[ClientSettings, CacheState], Any]
PFX_SUFFIXES = (".pfx", ".p12")


def authority(settings: ClientSettings, default_tenant: str | None = None) -> str:
    tenant = settings.tenant_id or default_tenant
    if not tenant:
        raise ConfigurationError("set JOBS_TENANT_ID (the Entra ID tenant id)")
    return f"{settings.authority_host}/{tenant}"


def client_credential(settings: ClientSettings) -> str | dict[str, str]:
    """The confidential client's credential: the secret, else the certificate (PEM or PFX)."""
    if settings.client_secret:
        return settings.client_secret
    path = settings.certificate_path
    if path is None:
        raise ConfigurationError("client credentials need JOBS_CLIENT_SECRET or JOBS_CLIENT_CERTIFICATE_PATH")
    if path.suffix.lower() in PFX_SUFFIXES:
        credential = {"private_key_pfx_path": str(path)}
        if settings.certificate_password:
            credential["passphrase"] = settings.certificate_password
        return credential
    try:
        pem = path.read_bytes()
    except OSError as error:
        raise ConfigurationError(f"cannot read the client certificate {path}: {error}") from error
    thumbprint = settings.certificate_thumbprint or certificate_thumbprint(pem)
    if not thumbprint:
        raise ConfigurationError(f"{path} holds no certificate: set JOBS_CLIENT_CERTIFICATE_THUMBPRINT")
    return {"private_key": pem.decode("utf-8", "replace"), "thumbprint": thumbprint.replace(":", "").upper()}


def certificate_thumbprint(pem: bytes) -> str | None:
    """SHA-1 thumbprint (hex) of the first certificate in a PEM bundle, None when it holds none."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None
    return certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - the thumbprint Entra ID uses


def token_from(result: Mapping[str, Any] | None, what: str) -> str:
    """The access token of an MSAL result, or AuthenticationError with MSAL's error and description."""
    if result and result.get("access_token"):
        return str(result["access_token"])
    if not result:
        raise AuthenticationError(f"{what}: no token")
    error = result.get("error") or "unknown_error"
    description = str(result.get("error_description") or "").splitlines()
    raise AuthenticationError(f"{what}: {error}: {description[0] if description else 'no description'}")


@contextmanager
def msal_failures(what: str, settings: ClientSettings) -> Iterator[None]:
    """MSAL's own failures (the authority unreachable or unknown) as AuthenticationError."""
    try:
        yield
    except (OSError, ValueError) as error:  # requests' errors are OSErrors; MSAL raises ValueError for authorities
        raise AuthenticationError(f"{what}: no token from {settings.authority_host}: {_first_line(error)}") from error


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class _MsalProvider:
    """Shared: the persistent cache and the lazily created MSAL application.

    Without a ``cache`` given, MSAL gets msal-extensions' PersistedTokenCache over the file, which
    reads and writes it by itself (``load`` and ``save`` then find nothing to do); a given cache
    state is loaded from and saved to the same file explicitly.
    """

    def __init__(self, settings: ClientSettings, app_factory: AppFactory, cache: CacheState | None) -> None:
        if not settings.client_id:
            raise ConfigurationError("set JOBS_CLIENT_ID (the client application id)")
        self.settings = settings
        self.cache_path = settings.token_cache_path or default_cache_path({})
        self._given_cache = cache
        self._app_factory = app_factory
        self._app: Any = None
        self._cache: PersistentTokenCache | None = None

    @property
    def cache(self) -> PersistentTokenCache:
        if self._cache is None:
            state = self._given_cache if self._given_cache is not None else persisted_cache(self.cache_path)
            self._cache = PersistentTokenCache(self.cache_path, state)
            if self._given_cache is not None:
                self._cache.load()
        return self._cache

    @property
    def app(self) -> Any:
        if self._app is None:
            self._app = self._app_factory(self.settings, self.cache.cache)
        return self._app


def confidential_app(settings: ClientSettings, cache: CacheState) -> Any:
    import msal  # type: ignore[import-untyped]  # noqa: PLC0415 - msal ships no type information

    return msal.ConfidentialClientApplication(
        settings.client_id, client_credential=client_credential(settings), authority=authority(settings),
        token_cache=cache,
    )


def public_app(settings: ClientSettings, cache: CacheState) -> Any:
    import msal  # noqa: PLC0415

    return msal.PublicClientApplication(
        settings.client_id, authority=authority(settings, "organizations"), token_cache=cache,
    )


class ClientCredentialsProvider(_MsalProvider):
    """A service's token (OAuth 2.0 client credentials) for ``JOBS_API_SCOPE`` (``api://<app>/.default``)."""

    def __init__(self, settings: ClientSettings, *, app_factory: AppFactory = confidential_app,
                 cache: CacheState | None = None) -> None:
        super().__init__(settings, app_factory, cache)
        scope = settings.api_scope
        if not scope or not scope.endswith("/.default"):
            raise ConfigurationError("client credentials need JOBS_API_SCOPE=api://<app-id>/.default")
        client_credential(settings)  # fail now on a missing secret or certificate
        self.scopes = [scope]

    def __call__(self) -> str:
        with msal_failures("client credentials", self.settings):
            result = self.app.acquire_token_for_client(scopes=self.scopes)  # MSAL answers from its cache first
            self.cache.save()
        return token_from(result, "client credentials")


class DeviceCodeProvider(_MsalProvider):
    """A person's token: silently from the cache (refresh token), else the device code flow (``prompt``
    shows where to sign in and the code)."""

    def __init__(self, settings: ClientSettings, *, prompt: Prompt, app_factory: AppFactory = public_app,
                 cache: CacheState | None = None) -> None:
        super().__init__(settings, app_factory, cache)
        scopes = settings.api_scopes or ((settings.api_scope,) if settings.api_scope else ())
        if not scopes:
            raise ConfigurationError(
                "device code sign-in needs JOBS_API_SCOPES, e.g. 'api://<app-id>/Jobs.Submit api://<app-id>/Jobs.Read'")
        self.scopes = list(scopes)
        self.prompt = prompt

    def __call__(self) -> str:
        with msal_failures("device code", self.settings):
            result = self._silent() or self._device_flow()
            self.cache.save()
        return token_from(result, "device code")

    def _device_flow(self) -> Mapping[str, Any]:
        flow = self.app.initiate_device_flow(scopes=self.scopes)
        if "user_code" not in flow:
            token_from(flow, "device code")  # raises with MSAL's error
        self.prompt(str(flow.get("message") or f"enter code {flow['user_code']}"))
        return dict(self.app.acquire_token_by_device_flow(flow))

    def _silent(self) -> Mapping[str, Any] | None:
        for account in self.app.get_accounts():
            result = self.app.acquire_token_silent(self.scopes, account=account)
            if result and result.get("access_token"):
                return dict(result)
        return None
