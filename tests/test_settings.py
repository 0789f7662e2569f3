"""Settings: one model, one default each, and a wrong value stops the app at startup by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import REGISTRY
from jobs.storage_names import DOC_INDEX, DOCUMENTS
from shared.config import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_values_come_from_the_environment_with_their_types() -> None:
    settings = load_settings({"JOBS_QUEUE": "work", "JOBS_LEASE_SECONDS": "45.5", "JOBS_AUTH_TENANTS": " A , b,",
                              "JOBS_MAX_INFLIGHT_PER_PRINCIPAL": "7", "JOBS_DOCUMENTS_CONTAINER": "docs2",
                              "AzureWebJobsStorage": "UseDevelopmentStorage=true", "UNRELATED": "x"},
                             REGISTRY.storage_names())
    assert (settings.jobs_queue, settings.poison_queue, settings.lease_seconds) == ("work", "work-poison", 45.5)
    assert settings.auth_tenants == ("a", "b") and settings.max_inflight_per_principal == 7
    assert settings.name_of(DOCUMENTS) == "docs2" and settings.name_of(DOC_INDEX) == "docindex"
    assert dict(settings.storage) == {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def test_empty_values_mean_the_default() -> None:
    settings = load_settings({"JOBS_LEASE_SECONDS": "", "JOBS_QUEUE": "", "JOBS_AUTH_JWKS_URI": "  "})
    defaults = Settings.environment_names()
    assert settings.lease_seconds == defaults["JOBS_LEASE_SECONDS"] == 300.0
    assert settings.jobs_queue == defaults["JOBS_QUEUE"] == "jobs" and settings.auth_jwks_uri is None


def test_the_storage_transport_ignores_the_proxy_environment_and_sizes_its_pool_from_host_json_by_default() -> None:
    defaults = load_settings({})
    assert defaults.storage_use_env_proxy is False and defaults.storage_pool_size is None
    names = Settings.environment_names()
    assert names["JOBS_STORAGE_USE_ENV_PROXY"] is False and names["JOBS_STORAGE_POOL_SIZE"] is None
    chosen = load_settings({"JOBS_STORAGE_USE_ENV_PROXY": "true", "JOBS_STORAGE_POOL_SIZE": "64"})
    assert chosen.storage_use_env_proxy is True and chosen.storage_pool_size == 64
    assert load_settings({"JOBS_STORAGE_POOL_SIZE": ""}).storage_pool_size is None


@pytest.mark.parametrize(("name", "value"), [
    ("JOBS_LEASE_SECONDS", "5m"), ("JOBS_LEASE_SECONDS", "0"), ("JOBS_MAX_PAYLOAD_BYTES", "8192.5"),
    ("JOBS_RETRY_BASE_SECONDS", "-1"), ("JOBS_LIST_MAX_PAGE_SIZE", "5000"), ("JOBS_QUEUE", "x" * 60),
    ("JOBS_STORAGE_POOL_SIZE", "0"), ("JOBS_STORAGE_POOL_SIZE", "many"), ("JOBS_STORAGE_USE_ENV_PROXY", "maybe"),
])
def test_a_wrong_value_is_refused_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({name: value})
    assert name in str(refused.value)


def test_a_wrong_value_stops_the_app_at_import_with_one_named_error() -> None:
    env = {**os.environ, "JOBS_LEASE_SECONDS": "5m", "JOBS_MAX_REQUEST_BYTES": "lots"}
    started = subprocess.run([sys.executable, "-c", "import function_app"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    assert started.returncode != 0
    last = started.stderr.strip().splitlines()[-1]
    assert last.startswith("shared.config.SettingsError: invalid settings:"), started.stderr[-2000:]
    assert "JOBS_LEASE_SECONDS" in last and "JOBS_MAX_REQUEST_BYTES" in last
    fine = subprocess.run([sys.executable, "-c", "import function_app"], cwd=ROOT, env={**os.environ},
                          capture_output=True, text=True, timeout=60, check=False)
    assert fine.returncode == 0, fine.stderr[-2000:]
