"""Settings, read once from the environment (app settings in Azure, local.settings.json locally).

Every threshold the system uses is a setting here, with the default documented in
docs/configuration.md. Names are the contract with infra/ and local.settings.json.example.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

STORAGE_CONNECTION = "AzureWebJobsStorage"


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"setting {name} must be a number, got {raw!r}") from exc
    if value < 0:
        raise ValueError(f"setting {name} must not be negative, got {raw!r}")
    return value


def _csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment."""

    storage: Mapping[str, str] = field(repr=False)
    jobs_queue: str = "jobs"
    outcomes_queue: str = "job-outcomes"
    jobs_table: str = "jobs"
    index_table: str = "docindex"
    documents_container: str = "documents"
    analysis_container: str = "analysis"
    mail_container: str = "mail"
    auth_tenants: tuple[str, ...] = ()
    auth_audiences: tuple[str, ...] = ()
    auth_jwks_uri: str | None = None
    max_payload_bytes: int = 8192
    max_request_bytes: int = 65536
    lease_seconds: float = 300.0
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 600.0
    status_retry_after_seconds: int = 2
    stranded_queued_seconds: float = 600.0
    outcome_grace_seconds: float = 120.0
    retention_days: float = 30.0
    maintenance_batch_size: int = 500
    max_inflight_per_principal: int = 100
    list_max_page_size: int = 100

    @property
    def poison_queue(self) -> str:
        return f"{self.jobs_queue}-poison"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment; raise ValueError naming a bad setting."""
    env = os.environ if env is None else env
    prefix = f"{STORAGE_CONNECTION}__"
    storage = {k: v for k, v in env.items() if k == STORAGE_CONNECTION or k.startswith(prefix)}
    return Settings(
        storage=storage,
        jobs_queue=_text(env, "JOBS_QUEUE", "jobs"),
        outcomes_queue=_text(env, "JOBS_OUTCOMES_QUEUE", "job-outcomes"),
        jobs_table=_text(env, "JOBS_TABLE", "jobs"),
        index_table=_text(env, "JOBS_INDEX_TABLE", "docindex"),
        documents_container=_text(env, "JOBS_DOCUMENTS_CONTAINER", "documents"),
        analysis_container=_text(env, "JOBS_ANALYSIS_CONTAINER", "analysis"),
        mail_container=_text(env, "JOBS_MAIL_CONTAINER", "mail"),
        auth_tenants=tuple(t.lower() for t in _csv(env, "JOBS_AUTH_TENANTS")),
        auth_audiences=_csv(env, "JOBS_AUTH_AUDIENCES"),
        auth_jwks_uri=env.get("JOBS_AUTH_JWKS_URI", "").strip() or None,
        max_payload_bytes=int(_number(env, "JOBS_MAX_PAYLOAD_BYTES", 8192)),
        max_request_bytes=int(_number(env, "JOBS_MAX_REQUEST_BYTES", 65536)),
        lease_seconds=_number(env, "JOBS_LEASE_SECONDS", 300.0),
        retry_base_seconds=_number(env, "JOBS_RETRY_BASE_SECONDS", 5.0),
        retry_max_seconds=_number(env, "JOBS_RETRY_MAX_SECONDS", 600.0),
        status_retry_after_seconds=int(_number(env, "JOBS_STATUS_RETRY_AFTER_SECONDS", 2)),
        stranded_queued_seconds=_number(env, "JOBS_STRANDED_QUEUED_SECONDS", 600.0),
        outcome_grace_seconds=_number(env, "JOBS_OUTCOME_GRACE_SECONDS", 120.0),
        retention_days=_number(env, "JOBS_RETENTION_DAYS", 30.0),
        maintenance_batch_size=int(_number(env, "JOBS_MAINTENANCE_BATCH_SIZE", 500)),
        max_inflight_per_principal=int(_number(env, "JOBS_MAX_INFLIGHT_PER_PRINCIPAL", 100)),
        list_max_page_size=int(_number(env, "JOBS_LIST_MAX_PAGE_SIZE", 100)),
    )
