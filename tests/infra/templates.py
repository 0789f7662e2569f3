"""Helpers for the infra tests: parse the Bicep templates (pycep-parser) and read the code's settings.

pycep returns plain dicts and does not tell a string literal from an identifier (both are str), so
the tests compare against the names the templates use; the Bicep text is checked too where that
matters (secrets, deprecated settings).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

from jobs import REGISTRY
from shared.config import STORAGE_CONNECTION, Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
MODULES = INFRA / "modules"
FUNCTION_APP_PY = ROOT / "function_app.py"
LOCAL_SETTINGS_EXAMPLE = ROOT / "local.settings.json.example"
DEPLOY_MD = ROOT / "docs" / "deploy.md"
WORKBOOK_JSON = INFRA / "workbooks" / "jobs.workbook.json"

# Read by the code but deliberately absent from the Azure template.
DEV_ONLY_SETTINGS = {
    # Signing keys come from each tenant's discovery document in Azure; the override exists for the
    # development issuer (devhost) only.
    "JOBS_AUTH_JWKS_URI",
}
# In local.settings.json.example for Core Tools, deprecated (and not set) on Flex Consumption.
LOCAL_ONLY_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME"}
FLEX_DEPRECATED_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
}
# The identity-based form of the AzureWebJobsStorage connection that the template uses.
IDENTITY_STORAGE_SETTINGS = {
    f"{STORAGE_CONNECTION}__credential",
    f"{STORAGE_CONNECTION}__clientId",
    f"{STORAGE_CONNECTION}__blobServiceUri",
    f"{STORAGE_CONNECTION}__queueServiceUri",
    f"{STORAGE_CONNECTION}__tableServiceUri",
}


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parser() -> BicepParser:
    return BicepParser()  # building the grammar takes ~0.4 s: once per session


@cache
def parse(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = parser().parse(file_path=path)
    return result


def module(name: str) -> dict[str, Any]:
    return parse(MODULES / f"{name}.bicep")


def main() -> dict[str, Any]:
    return parse(MAIN)


def body(declaration: dict[str, Any]) -> dict[str, Any]:
    """A resource's or module's body, unwrapping `= if (condition) {...}`."""
    config: dict[str, Any] = declaration["config"]
    if "condition" in config and isinstance(config.get("config"), dict):
        inner: dict[str, Any] = config["config"]
        return inner
    return config


def condition(declaration: dict[str, Any]) -> Any:
    return declaration["config"].get("condition")


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: decl
        for name, decl in template.get("resources", {}).items()
        if decl["type"].lower() == resource_type.lower() and not decl.get("existing")
    }


def only_resource(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found = resources_of_type(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.values()))


def decorator(parameter: dict[str, Any], kind: str) -> Any:
    for item in parameter.get("decorators", []):
        if item.get("type") == kind:
            return item.get("argument")
    return None


def function_arg(value: Any, function: str) -> Any:
    """The single argument of `function(arg)` as pycep shows it, else None."""
    if isinstance(value, dict) and isinstance(value.get("function"), dict):
        call = value["function"]
        if call.get("type") == function:
            args = list(call.get("parameters", {}).values())
            return args[0] if len(args) == 1 else args
    return None


def template_app_settings() -> dict[str, Any]:
    """Every app setting the template sets: main.bicep's JOBS_* settings + function-app.bicep's own."""
    jobs = main()["variables"]["jobsAppSettings"]["value"]
    platform = module("function-app")["variables"]["platformSettings"]["value"]
    overlap = set(jobs) & set(platform)
    assert not overlap, f"settings set twice: {overlap}"
    return {**jobs, **platform}


def code_settings() -> set[str]:
    """The settings the code reads: the settings model's names (shared/config.py), the containers and
    tables the job types declare, %JOBS_*% binding expressions in function_app.py, and the storage
    connection (AzureWebJobsStorage, possibly identity-based)."""
    names = set(Settings.environment_names())
    names |= {name.setting for name in REGISTRY.storage_names()}
    names |= set(re.findall(r"%(JOBS_[A-Z0-9_]+)%", FUNCTION_APP_PY.read_text()))
    names.add(STORAGE_CONNECTION)
    return names


def code_defaults() -> dict[str, str]:
    """Each setting's default as the code states it: the settings model's, and each StorageName's."""
    found = {name: str(default) for name, default in Settings.environment_names().items()
             if isinstance(default, str | int | float) and not isinstance(default, bool)}
    found |= {name.setting: name.default for name in REGISTRY.storage_names()}
    return found


def local_settings_example() -> dict[str, str]:
    values: dict[str, str] = json.loads(LOCAL_SETTINGS_EXAMPLE.read_text())["Values"]
    return values


def bicep_text() -> str:
    return "\n".join(path.read_text() for path in bicep_files())


def strip_comments(text: str) -> str:
    """Bicep text without // and /* */ comments; string literals (also multi-line ones) are kept."""
    quote, triple = "'", "'''"
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith(triple, i):
            end = text.find(triple, i + 3)
            end = n if end < 0 else end + 3
            out.append(text[i:end])
            i = end
        elif text[i] == quote:
            j = i + 1
            while j < n and text[j] != quote:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
