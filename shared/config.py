"""Settings, read once from the environment (app settings in Azure, local.settings.json locally).

One pydantic-settings model holds every setting the engine reads, each with its one default,
its environment name and its bounds, so a wrong value (``JOBS_LEASE_SECONDS=5m``) fails when the
app starts, naming the setting, instead of answering 500 on every request. The containers and
tables a job type works on are not settings of the engine: each job type declares them
(``StorageName``), and their names are resolved here from the same environment. Defaults are
documented in docs/configuration.md; names are the contract with infra/ and
local.settings.json.example (tests/infra reads them from this model).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

STORAGE_CONNECTION = "AzureWebJobsStorage"


@dataclass(frozen=True)
class StorageName:
    """A container or table a job type uses: the setting that names it, and its default name."""

    setting: str
    default: str


Csv = Annotated[tuple[str, ...], NoDecode]  # "a, b" in the environment, not JSON


# The environment a load reads: os.environ in the app; a plain mapping in tests and devhost.
_ENVIRONMENT: ContextVar[Mapping[str, str] | None] = ContextVar("jobs_settings_environment", default=None)


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source, over the mapping being loaded instead of os.environ."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRONMENT.get()
        return parse_env_vars(os.environ if environ is None else environ, self.case_sensitive,
                              self.env_ignore_empty, self.env_parse_none_str)


class SettingsError(ValueError):
    """A setting has a value the app cannot use; the message names the setting."""


class Settings(BaseSettings):
    """Everything the engine reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="JOBS_", frozen=True, extra="ignore", case_sensitive=False,
                                      env_ignore_empty=True)

    storage: Mapping[str, str] = Field(default_factory=dict, repr=False, exclude=True)
    storage_names: Mapping[str, str] = Field(default_factory=dict, exclude=True)  # StorageName.setting -> name
    jobs_queue: str = Field("jobs", min_length=3, max_length=57, validation_alias=AliasChoices("JOBS_QUEUE"))
    outcomes_queue: str = Field("job-outcomes", min_length=3, max_length=63,
                                validation_alias=AliasChoices("JOBS_OUTCOMES_QUEUE"))
    jobs_table: str = Field("jobs", min_length=3, max_length=63, validation_alias=AliasChoices("JOBS_TABLE"))
    auth_tenants: Csv = ()
    auth_audiences: Csv = ()
    auth_jwks_uri: str | None = None
    max_payload_bytes: int = Field(8192, ge=256, le=48 * 1024)
    max_request_bytes: int = Field(65536, ge=1024, le=4 * 1024 * 1024)
    lease_seconds: float = Field(300.0, gt=0)
    retry_base_seconds: float = Field(5.0, ge=0)
    retry_max_seconds: float = Field(600.0, ge=0, le=7 * 24 * 3600)
    status_retry_after_max_seconds: int = Field(30, ge=1, le=3600)  # cap on the job types' Retry-After
    stranded_queued_seconds: float = Field(600.0, ge=0)
    outcome_grace_seconds: float = Field(120.0, ge=0)
    outcome_ttl_seconds: int = Field(7 * 24 * 3600, ge=-1)  # how long an unread outcome event stays; -1: forever
    retention_days: float = Field(30.0, ge=0)
    maintenance_batch_size: int = Field(500, ge=1, le=10_000)
    # How long one run may wait for known times (RetryLater) without spending attempts.
    defer_limit_seconds: float = Field(3600.0, gt=0, le=7 * 24 * 3600)
    max_inflight_per_principal: int = Field(100, ge=1)
    list_max_page_size: int = Field(100, ge=1, le=1000)
    status_max_waiters: int = Field(100, ge=0, le=10_000)  # long-polling status requests per instance
    # Storage transport (shared/store/transport.py). Proxy variables and ~/.netrc are ignored unless
    # this is set: honouring them costs a thread hop per request. No value: the pool is sized from
    # host.json's concurrency.
    storage_use_env_proxy: bool = False
    storage_pool_size: int | None = Field(None, ge=1, le=10_000)

    @field_validator("outcome_ttl_seconds")
    @classmethod
    def _ttl_not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("0 would drop every event at once: a number of seconds, or -1 for never")
        return value

    @field_validator("auth_tenants", "auth_audiences", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("auth_tenants", mode="after")
    @classmethod
    def _lower_tenants(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t.lower() for t in value)

    @field_validator("auth_jwks_uri", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return value.strip() or None if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init values (storage, names) first, then the environment; no .env or secrets files (the host
        and devhost put local.settings.json into the environment)."""
        return init_settings, _Environment(settings_cls)

    @property
    def poison_queue(self) -> str:
        return f"{self.jobs_queue}-poison"

    def name_of(self, name: StorageName) -> str:
        """The container or table name a job type's StorageName resolves to here."""
        return self.storage_names.get(name.setting, name.default)

    @classmethod
    def environment_name(cls, field_name: str) -> str:
        alias = cls.model_fields[field_name].validation_alias
        return str(alias.choices[0]) if isinstance(alias, AliasChoices) else f"JOBS_{field_name.upper()}"

    @classmethod
    def environment_names(cls) -> dict[str, Any]:
        """Each setting's environment name and its default (for tests/infra and the docs)."""
        return {cls.environment_name(name): info.get_default(call_default_factory=True)
                for name, info in cls.model_fields.items() if name not in ("storage", "storage_names")}


def load_settings(env: Mapping[str, str] | None = None, storage_names: Iterable[StorageName] = ()) -> Settings:
    """Build Settings from the environment; SettingsError names every setting that is wrong."""
    env = os.environ if env is None else env
    prefix = f"{STORAGE_CONNECTION}__"
    storage = {k: v for k, v in env.items() if k == STORAGE_CONNECTION or k.startswith(prefix)}
    names = {n.setting: (env.get(n.setting) or "").strip() or n.default for n in storage_names}
    token = _ENVIRONMENT.set(env)
    try:
        return Settings(storage=storage, storage_names=names)
    except ValidationError as exc:
        problems = "; ".join(f"{_named(err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False))
        raise SettingsError(f"invalid settings: {problems}") from exc
    finally:
        _ENVIRONMENT.reset(token)


def _named(location: tuple[int | str, ...]) -> str:
    field = str(location[0]) if location else ""
    return Settings.environment_name(field) if field in Settings.model_fields else field
