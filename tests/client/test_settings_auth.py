"""Settings from the environment, auth-mode selection and the MSAL providers' configuration
(MSAL itself is replaced by fakes: no Entra ID is reachable from tests)."""

from __future__ import annotations

import datetime
import json
import stat
from pathlib import Path
from typing import Any

import jwt
import msal_extensions  # type: ignore[import-untyped]
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from client.auth import DevTokenProvider, build_token_provider
from client.errors import AuthenticationError, ConfigurationError
from client.msal_auth import ClientCredentialsProvider, DeviceCodeProvider, client_credential, token_from
from client.settings import ClientSettings, choose_auth_mode, default_cache_path
from devhost.issuer import DevIssuer
from tests.support import AUDIENCE, TENANT

CLIENT = "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5"
ENTRA = {"JOBS_CLIENT_ID": CLIENT, "JOBS_TENANT_ID": TENANT, "JOBS_API_SCOPE": "api://jobs-api/.default"}


def settings(**env: str) -> ClientSettings:
    return ClientSettings.from_env({"HOME": "/home/someone", **env})


# ---- settings and mode selection ----------------------------------------------------------------

def test_settings_from_the_environment() -> None:
    s = settings(JOBS_BASE_URL="https://jobs.example.net", JOBS_CLIENT_ID=CLIENT, JOBS_CLIENT_SECRET="s3cret",
                 JOBS_API_SCOPES="api://a/Jobs.Submit, api://a/Jobs.Read", JOBS_AUTH_TENANTS=f"{TENANT},other",
                 JOBS_DEV_SCOPES="Jobs.Admin", JOBS_AUTHORITY_HOST="https://login.example/")
    assert s.base_url == "https://jobs.example.net" and s.client_secret == "s3cret"
    assert s.api_scopes == ("api://a/Jobs.Submit", "api://a/Jobs.Read")
    assert s.dev_tenant == TENANT and s.dev_scopes == ("Jobs.Admin",)
    assert s.authority_host == "https://login.example"
    assert s.token_cache_path == Path("/home/someone/.cache/jobs-client/msal-token-cache.json")


def test_defaults() -> None:
    s = settings()
    assert s.base_url == "http://127.0.0.1:7071" and s.dev_scopes == ("Jobs.Submit", "Jobs.Read")
    assert s.auth_mode is None and not s.has_client_credential
    assert default_cache_path({"XDG_CACHE_HOME": "/x"}) == Path("/x/jobs-client/msal-token-cache.json")
    assert settings(JOBS_TOKEN_CACHE="/t/c.json").token_cache_path == Path("/t/c.json")


@pytest.mark.parametrize(("url", "env", "requested", "expected"), [
    ("http://127.0.0.1:7071", {}, None, "dev"),
    ("http://localhost:7071", {"JOBS_CLIENT_SECRET": "s"}, None, "dev"),
    ("http://[::1]:7071", {}, None, "dev"),
    ("https://jobs.example.net", {"JOBS_CLIENT_SECRET": "s"}, None, "client-credentials"),
    ("https://jobs.example.net", {"JOBS_CLIENT_CERTIFICATE_PATH": "/c.pem"}, None, "client-credentials"),
    ("https://jobs.example.net", {}, None, "device-code"),
    ("https://jobs.example.net", {"JOBS_AUTH_MODE": "dev"}, None, "dev"),
    ("http://127.0.0.1:7071", {"JOBS_AUTH_MODE": "dev"}, "device-code", "device-code"),
])
def test_auth_mode_selection(url: str, env: dict[str, str], requested: str | None, expected: str) -> None:
    assert choose_auth_mode(url, settings(**env), requested) == expected


def test_an_unknown_auth_mode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown auth mode"):
        choose_auth_mode("http://127.0.0.1", settings(JOBS_AUTH_MODE="magic"))


def test_build_token_provider_picks_the_provider_for_the_mode(tmp_path: Path) -> None:
    s = settings(**ENTRA, JOBS_CLIENT_SECRET="s", JOBS_API_SCOPES="api://jobs-api/Jobs.Read",
                 JOBS_TOKEN_CACHE=str(tmp_path / "c.json"), JOBS_AUTH_TENANTS=TENANT, JOBS_AUTH_AUDIENCES=AUDIENCE)
    dev = build_token_provider("dev", s)
    assert isinstance(dev, DevTokenProvider) and (dev.tenant, dev.audience) == (TENANT, AUDIENCE)
    assert isinstance(build_token_provider("client-credentials", s), ClientCredentialsProvider)
    assert isinstance(build_token_provider("device-code", s), DeviceCodeProvider)
    assert not (tmp_path / "c.json").exists()  # nothing is fetched or written before the first token


# ---- client credentials ---------------------------------------------------------------------------

def test_client_credentials_settings_are_checked_up_front() -> None:
    with pytest.raises(ConfigurationError, match="JOBS_CLIENT_ID"):
        ClientCredentialsProvider(settings(JOBS_API_SCOPE="api://x/.default", JOBS_CLIENT_SECRET="s"))
    with pytest.raises(ConfigurationError, match=r"/\.default"):
        ClientCredentialsProvider(settings(**{**ENTRA, "JOBS_API_SCOPE": "api://x/Jobs.Submit"},
                                           JOBS_CLIENT_SECRET="s"))
    with pytest.raises(ConfigurationError, match="JOBS_CLIENT_SECRET or JOBS_CLIENT_CERTIFICATE_PATH"):
        ClientCredentialsProvider(settings(**ENTRA))


def _certificate_pem(tmp_path: Path, *, with_certificate: bool = True) -> tuple[Path, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jobs-client-test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    if with_certificate:
        pem += certificate.public_bytes(serialization.Encoding.PEM)
    path = tmp_path / "client.pem"
    path.write_bytes(pem)
    return path, certificate.fingerprint(hashes.SHA1()).hex().upper()


def test_client_credential_is_the_secret_first() -> None:
    assert client_credential(settings(JOBS_CLIENT_SECRET="s", JOBS_CLIENT_CERTIFICATE_PATH="/x.pem")) == "s"


def test_client_credential_from_a_pem_computes_the_thumbprint(tmp_path: Path) -> None:
    path, thumbprint = _certificate_pem(tmp_path)
    credential = client_credential(settings(JOBS_CLIENT_CERTIFICATE_PATH=str(path)))
    assert isinstance(credential, dict)
    assert credential["thumbprint"] == thumbprint and "BEGIN PRIVATE KEY" in credential["private_key"]


def test_a_pem_without_certificate_needs_a_thumbprint(tmp_path: Path) -> None:
    path, _ = _certificate_pem(tmp_path, with_certificate=False)
    with pytest.raises(ConfigurationError, match="THUMBPRINT"):
        client_credential(settings(JOBS_CLIENT_CERTIFICATE_PATH=str(path)))
    credential = client_credential(settings(JOBS_CLIENT_CERTIFICATE_PATH=str(path),
                                            JOBS_CLIENT_CERTIFICATE_THUMBPRINT="ab:cd:ef"))
    assert isinstance(credential, dict) and credential["thumbprint"] == "ABCDEF"


def test_a_pfx_is_passed_to_msal_by_path(tmp_path: Path) -> None:
    credential = client_credential(settings(JOBS_CLIENT_CERTIFICATE_PATH=str(tmp_path / "c.pfx"),
                                            JOBS_CLIENT_CERTIFICATE_PASSWORD="pw"))
    assert credential == {"private_key_pfx_path": str(tmp_path / "c.pfx"), "passphrase": "pw"}


def test_a_missing_certificate_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        client_credential(settings(JOBS_CLIENT_CERTIFICATE_PATH=str(tmp_path / "absent.pem")))


class FakeCache:
    def __init__(self) -> None:
        self.has_state_changed = False
        self.state: dict[str, Any] = {}

    def serialize(self) -> str:
        return json.dumps(self.state)

    def deserialize(self, state: str | None) -> None:
        self.state = json.loads(state or "{}")
        self.has_state_changed = False


class FakeConfidentialApp:
    def __init__(self, cache: FakeCache, results: list[dict[str, Any]]) -> None:
        self.cache = cache
        self.results = results
        self.calls: list[list[str]] = []

    def acquire_token_for_client(self, scopes: list[str]) -> dict[str, Any]:
        self.calls.append(scopes)
        result = self.results.pop(0)
        if "access_token" in result:
            self.cache.state = {"AccessToken": {"k": result["access_token"]}}
            self.cache.has_state_changed = True
        return result


def test_client_credentials_provider_acquires_and_saves_the_cache(tmp_path: Path) -> None:
    cache_file = tmp_path / "cache" / "tokens.json"
    s = settings(**ENTRA, JOBS_CLIENT_SECRET="s", JOBS_TOKEN_CACHE=str(cache_file))
    cache = FakeCache()
    apps: list[FakeConfidentialApp] = []

    def factory(given: ClientSettings, state: Any) -> FakeConfidentialApp:
        assert given is s and state is cache
        apps.append(FakeConfidentialApp(cache, [{"access_token": "A1"}, {"access_token": "A1"}]))
        return apps[-1]

    provider = ClientCredentialsProvider(s, app_factory=factory, cache=cache)
    assert provider() == "A1"
    assert json.loads(cache_file.read_text()) == {"AccessToken": {"k": "A1"}}
    assert provider() == "A1"
    assert len(apps) == 1 and apps[0].calls == [["api://jobs-api/.default"]] * 2


def test_client_credentials_errors_become_authentication_errors(tmp_path: Path) -> None:
    s = settings(**ENTRA, JOBS_CLIENT_SECRET="s", JOBS_TOKEN_CACHE=str(tmp_path / "c.json"))
    cache = FakeCache()
    failure = {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret.\nTrace ID: x"}
    provider = ClientCredentialsProvider(s, app_factory=lambda *_: FakeConfidentialApp(cache, [failure]), cache=cache)
    with pytest.raises(AuthenticationError, match=r"invalid_client: AADSTS7000215: Invalid client secret\.$"):
        provider()
    assert not (tmp_path / "c.json").exists()  # nothing changed, nothing written


# ---- device code --------------------------------------------------------------------------------

class FakePublicApp:
    def __init__(self, cache: FakeCache, *, accounts: list[dict[str, str]], silent: dict[str, Any] | None) -> None:
        self.cache = cache
        self.accounts = accounts
        self.silent = silent
        self.flows = 0

    def get_accounts(self) -> list[dict[str, str]]:
        return self.accounts

    def acquire_token_silent(self, scopes: list[str], account: dict[str, str]) -> dict[str, Any] | None:
        return self.silent

    def initiate_device_flow(self, scopes: list[str]) -> dict[str, Any]:
        self.flows += 1
        return {"user_code": "ABCD-EFGH", "message": "To sign in, enter the code ABCD-EFGH"}

    def acquire_token_by_device_flow(self, flow: dict[str, Any]) -> dict[str, Any]:
        self.cache.state = {"RefreshToken": {"r": "R"}}
        self.cache.has_state_changed = True
        self.accounts = [{"username": "someone"}]
        return {"access_token": "U1"}


def _device(tmp_path: Path, app: FakePublicApp, cache: FakeCache, prompts: list[str]) -> DeviceCodeProvider:
    s = settings(JOBS_CLIENT_ID=CLIENT, JOBS_API_SCOPES="api://jobs-api/Jobs.Submit api://jobs-api/Jobs.Read",
                 JOBS_TOKEN_CACHE=str(tmp_path / "c.json"))
    return DeviceCodeProvider(s, prompt=prompts.append, app_factory=lambda *_: app, cache=cache)


def test_device_code_prompts_once_then_uses_the_cached_account(tmp_path: Path) -> None:
    cache, prompts = FakeCache(), list[str]()
    app = FakePublicApp(cache, accounts=[], silent=None)
    provider = _device(tmp_path, app, cache, prompts)

    assert provider() == "U1" and prompts == ["To sign in, enter the code ABCD-EFGH"]
    assert json.loads((tmp_path / "c.json").read_text()) == {"RefreshToken": {"r": "R"}}
    app.silent = {"access_token": "U2"}
    assert provider() == "U2" and app.flows == 1 and len(prompts) == 1


def test_device_code_needs_scopes_and_a_client_id(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="JOBS_API_SCOPES"):
        DeviceCodeProvider(settings(JOBS_CLIENT_ID=CLIENT), prompt=print)
    with pytest.raises(ConfigurationError, match="JOBS_CLIENT_ID"):
        DeviceCodeProvider(settings(JOBS_API_SCOPES="api://x/Jobs.Read"), prompt=print)


def test_token_from_reports_msal_errors() -> None:
    assert token_from({"access_token": "x"}, "w") == "x"
    with pytest.raises(AuthenticationError, match="w: no token"):
        token_from(None, "w")
    with pytest.raises(AuthenticationError, match="w: authorization_pending: no description"):
        token_from({"error": "authorization_pending"}, "w")


# ---- development tokens ---------------------------------------------------------------------------

def test_dev_provider_mints_a_token_the_devhost_issuer_verifies(tmp_path: Path) -> None:
    provider = DevTokenProvider(tenant=TENANT, audience=AUDIENCE, roles=["Jobs.Admin"], project_dir=tmp_path)
    token = provider()
    issuer = DevIssuer(tmp_path / ".devhost")
    key = jwt.PyJWK(issuer.jwks()["keys"][0]).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE)
    assert claims["tid"] == TENANT and claims["scp"] == "Jobs.Submit Jobs.Read" and claims["roles"] == ["Jobs.Admin"]
    assert provider() == token  # reused until close to expiry


def test_dev_provider_defaults_tenant_and_audience_like_devhost_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JOBS_AUTH_TENANTS", raising=False)
    monkeypatch.delenv("JOBS_AUTH_AUDIENCES", raising=False)
    (tmp_path / "local.settings.json").write_text(json.dumps(
        {"Values": {"JOBS_AUTH_TENANTS": f"{TENANT},x", "JOBS_AUTH_AUDIENCES": "api://from-settings"}}))
    claims = jwt.decode(DevTokenProvider(project_dir=tmp_path)(), options={"verify_signature": False})
    assert (claims["tid"], claims["aud"]) == (TENANT, "api://from-settings")


def test_dev_provider_without_tenant_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBS_AUTH_TENANTS", raising=False)
    with pytest.raises(ConfigurationError, match="JOBS_AUTH_TENANTS"):
        DevTokenProvider(audience=AUDIENCE, project_dir=tmp_path)()


def test_an_unreachable_authority_is_an_authentication_error(tmp_path: Path) -> None:
    def unreachable(*_: Any) -> Any:
        raise ConnectionError("Failed to resolve the authority host")  # what requests raises is an OSError too

    s = settings(**ENTRA, JOBS_CLIENT_SECRET="s", JOBS_TOKEN_CACHE=str(tmp_path / "c.json"))
    expected = r"client credentials: no token from https://login\.microsoftonline\.com: Failed to resolve"
    with pytest.raises(AuthenticationError, match=expected):
        ClientCredentialsProvider(s, app_factory=unreachable, cache=FakeCache())()


def test_without_a_cache_given_msal_gets_a_persisted_cache_on_the_first_request(tmp_path: Path) -> None:
    cache_file = tmp_path / "cache" / "tokens.json"
    s = settings(**ENTRA, JOBS_CLIENT_SECRET="s", JOBS_TOKEN_CACHE=str(cache_file))
    given: list[Any] = []

    class App:
        def acquire_token_for_client(self, scopes: list[str]) -> dict[str, Any]:
            given[0].add({"client_id": CLIENT, "scope": scopes, "environment": "login.microsoftonline.com",
                          "token_endpoint": "https://login.microsoftonline.com/t/oauth2/v2.0/token",
                          "response": {"access_token": "A1", "token_type": "Bearer", "expires_in": 3600}})
            return {"access_token": "A1"}

    def factory(_: ClientSettings, state: Any) -> App:
        given.append(state)
        return App()

    provider = ClientCredentialsProvider(s, app_factory=factory)
    assert not cache_file.parent.exists()  # constructing a provider touches nothing
    assert provider() == "A1"
    assert isinstance(given[0], msal_extensions.PersistedTokenCache)
    assert "A1" in cache_file.read_text() and stat.S_IMODE(cache_file.stat().st_mode) == 0o600
