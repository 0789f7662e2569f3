"""The template, the local example and the deployment guide agree with the code.

The setting names come from the code itself (the settings model in shared/config.py, the storage
names the job types declare, and function_app.py's %SETTING% binding expressions), so a setting
someone adds to the code fails here until the template, local.settings.json.example and
docs/deploy.md carry it too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.infra.templates import (
    DEPLOY_MD,
    DEV_ONLY_SETTINGS,
    FLEX_DEPRECATED_SETTINGS,
    IDENTITY_STORAGE_SETTINGS,
    INFRA,
    LOCAL_ONLY_SETTINGS,
    ROOT,
    STORAGE_CONNECTION,
    WORKBOOK_JSON,
    code_defaults,
    code_settings,
    function_arg,
    local_settings_example,
    main,
    template_app_settings,
)


def python_text(*folders: str) -> str:
    files = [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]
    files.append(ROOT / "function_app.py")
    return "\n".join(path.read_text() for path in files)


def test_settings_are_read_from_the_code() -> None:
    settings = code_settings()
    # Sanity: the readers still find what they are meant to.
    expected = {"JOBS_QUEUE", "JOBS_AUTH_TENANTS", "JOBS_AUTH_AUDIENCES", "JOBS_MAINTENANCE_SCHEDULE",
                STORAGE_CONNECTION}
    assert expected <= settings
    assert settings >= DEV_ONLY_SETTINGS, "a dev-only setting the code no longer reads: update tests/infra/templates.py"


def test_template_sets_every_setting_the_code_reads() -> None:
    template = set(template_app_settings())
    missing = sorted(code_settings() - DEV_ONLY_SETTINGS - {STORAGE_CONNECTION} - template)
    assert not missing, f"add to infra/main.bicep (jobsAppSettings, with a parameter): {missing}"
    assert template >= IDENTITY_STORAGE_SETTINGS, sorted(IDENTITY_STORAGE_SETTINGS - template)


def test_template_leaves_out_dev_and_local_only_settings() -> None:
    template = set(template_app_settings())
    assert not template & DEV_ONLY_SETTINGS, "JOBS_AUTH_JWKS_URI is dev-only: Azure uses the tenants' own keys"
    assert not template & LOCAL_ONLY_SETTINGS
    assert not template & FLEX_DEPRECATED_SETTINGS


def test_template_sets_no_setting_the_code_does_not_read() -> None:
    stale = sorted(name for name in template_app_settings() if name.startswith("JOBS_") and name not in code_settings())
    assert not stale, f"the code no longer reads: {stale}"


def test_local_example_has_every_setting_the_code_reads() -> None:
    example = local_settings_example()
    missing = sorted(code_settings() - set(example))
    assert not missing, f"add to local.settings.json.example: {missing}"
    assert example.get("FUNCTIONS_WORKER_RUNTIME") == "python"  # Core Tools needs it locally (never in Azure)


def test_deploy_guide_documents_every_setting() -> None:
    text = DEPLOY_MD.read_text()
    names = code_settings() | set(template_app_settings())
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert not missing, f"document in docs/deploy.md (as `NAME`): {missing}"


def test_parameter_defaults_match_the_code_defaults() -> None:
    """Names and numbers in Azure are the code's defaults unless someone sets a parameter."""
    parameters = main()["parameters"]
    settings = main()["variables"]["jobsAppSettings"]["value"]
    defaults = code_defaults()
    assert len(defaults) >= 15, "tests/infra/templates.py no longer finds the code's defaults"
    checked = 0
    for name, value in settings.items():
        parameter_name = function_arg(value, "string") or value
        assert isinstance(parameter_name, str) and parameter_name in parameters, f"{name} must come from a parameter"
        if name not in defaults:
            continue
        template_default = parameters[parameter_name].get("default")
        assert template_default is not None, f"{parameter_name} ({name}) needs the code's default"
        if isinstance(template_default, int):
            assert float(template_default) == float(defaults[name]), (name, template_default, defaults[name])
        else:
            assert template_default == defaults[name], (name, template_default, defaults[name])
        checked += 1
    assert checked >= 15


def test_maintenance_schedule_matches_the_local_example() -> None:
    default = main()["parameters"]["maintenanceSchedule"]["default"]
    assert default == local_settings_example()["JOBS_MAINTENANCE_SCHEDULE"]
    assert len(default.split()) == 6, "NCRONTAB has six fields (seconds first)"


def test_auth_settings_are_required_parameters() -> None:
    parameters = main()["parameters"]
    settings = main()["variables"]["jobsAppSettings"]["value"]
    assert settings["JOBS_AUTH_TENANTS"] == "authTenants" and settings["JOBS_AUTH_AUDIENCES"] == "authAudiences"
    for name in ("authTenants", "authAudiences"):
        assert parameters[name].get("default") is None, f"{name}: no default, azd asks (fail closed)"
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["authTenants"]["value"] == "${JOBS_AUTH_TENANTS}"
    assert values["authAudiences"]["value"] == "${JOBS_AUTH_AUDIENCES}"


def test_azd_parameters_file_matches_main() -> None:
    parameters = main()["parameters"]
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(values) <= set(parameters), sorted(set(values) - set(parameters))
    required = {name for name, p in parameters.items() if p.get("default") is None}
    assert required <= set(values), sorted(required - set(values))
    assert values["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert values["location"]["value"] == "${AZURE_LOCATION}"
    assert values["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"


def test_telemetry_the_alerts_and_workbook_rely_on_is_still_logged() -> None:
    """Alerts and the workbook match log messages and custom dimensions: keep them in step."""
    code = python_text("shared", "jobs")
    for message in (
        "re-enqueued a stranded Queued job",  # stranded alert, workbook
        "took over a job whose lease expired",  # workbook
        "poison message could not be settled",  # poison-queue alert, workbook
        "outcome %s emitted",  # outcome records (with eventId)
        "handler finished in %d ms",  # durations
        "attempt %s failed",  # retries
    ):
        assert message in code, f"alerts/workbook look for {message!r}, which the code no longer logs"
    dimensions = ("jobId", "jobType", "correlationId", "attempt", "outcome", "outcomeCode", "eventId", "durationMs",
                  "queueWaitMs")
    for dimension in dimensions:
        assert f'"{dimension}"' in code, f"the code no longer logs the {dimension} dimension"
    assert re.search(r'function_name\("poison_job"\)', (ROOT / "function_app.py").read_text())
    workbook = WORKBOOK_JSON.read_text()
    assert "poison_job" in workbook and "re-enqueued a stranded Queued job" in workbook


def test_application_insights_exporter_is_configured_exactly_once() -> None:
    """The custom dimensions (a log record's `extra`) reach Application Insights only through the
    Azure Monitor OpenTelemetry distro; the Functions host's own log forwarding drops them. Either
    the code configures the distro or the worker does (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY),
    never both: two exporters send every record twice."""
    requirements = (ROOT / "requirements.txt").read_text().lower()
    assert re.search(r"^azure-monitor-opentelemetry\b", requirements, re.MULTILINE), (
        "requirements.txt lacks azure-monitor-opentelemetry: the workbook and the outcome alerts would see no "
        "customDimensions in Azure"
    )
    configured_in_code = "configure_azure_monitor(" in python_text("shared")
    worker_setting = template_app_settings().get("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY")
    if configured_in_code:
        assert worker_setting is None, "the code configures Azure Monitor: the worker must not do it again"
    else:
        assert worker_setting == "true", "nothing configures the Azure Monitor exporter"
    settings = template_app_settings()
    assert {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"} <= set(settings)


def test_host_and_worker_telemetry_are_one_opentelemetry_stream() -> None:
    """As the Functions OpenTelemetry docs describe: host.json's telemetryMode turns the host to
    OpenTelemetry, and PYTHON_ENABLE_OPENTELEMETRY makes the worker's spans and logs part of it,
    so the host no longer forwards the worker's records as a second, dimensionless copy."""
    host = json.loads((ROOT / "host.json").read_text())
    assert host["telemetryMode"] == "OpenTelemetry"
    assert template_app_settings().get("PYTHON_ENABLE_OPENTELEMETRY") == "true"


def test_azure_yaml_deploys_the_api_service() -> None:
    text = (ROOT / "azure.yaml").read_text()
    assert re.search(r"^services:\s*\n\s+api:\s*\n", text, re.MULTILINE)
    for line in ("project: .", "language: python", "host: function"):
        assert re.search(rf"^\s+{re.escape(line)}\s*$", text, re.MULTILINE), line
    assert "azd-service-name" in (INFRA / "modules" / "function-app.bicep").read_text()


def funcignore_patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Enough of gitignore semantics for this file: `dir/`, `/name`, `*.ext`, `name`, `!negation`."""
    result = False
    parts = Path(path).parts
    for pattern in patterns:
        negate = pattern.startswith("!")
        raw = pattern[1:] if negate else pattern
        anchored = raw.startswith("/")
        raw = raw.strip("/")
        candidates = [parts[0]] if anchored else list(parts)
        if any(Path(c).match(raw) for c in candidates) or Path(path).match(raw):
            result = not negate
    return result


def test_funcignore_ships_the_app_and_nothing_else() -> None:
    patterns = funcignore_patterns()
    for needed in ("function_app.py", "host.json", "requirements.txt", "shared/config.py", "jobs/__init__.py"):
        assert not ignored(needed, patterns), f".funcignore would drop {needed}"
    for unwanted in (".venv/bin/python", ".venv-tools/bin/checkov", "node_modules/azurite/package.json",
                     "tests/conftest.py", "devhost/host.py", "infra/main.bicep", "docs/deploy.md", ".git/HEAD",
                     "local.settings.json", "shared/__pycache__/x.pyc", ".devhost/key.pem", "scripts/test.sh",
                     "bench/run.py", "client/api.py", "README.md", "azure.yaml", "dev-requirements.txt",
                     "tools-requirements.txt", "package.json", ".azure/dev/.env"):
        assert ignored(unwanted, patterns), f".funcignore should exclude {unwanted}"
