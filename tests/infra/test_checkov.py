"""checkov (policy scan of the Bicep templates) passes, offline, with every skip listed in infra/.checkov.yaml.

checkov lives in its own environment (.venv-tools, made by scripts/bootstrap.sh from
tools-requirements.txt) because it pins packages the app pins differently. It runs once per session.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import pytest

from tests.infra.templates import INFRA, ROOT

CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"
CONFIG = INFRA / ".checkov.yaml"
SKIP_ENTRY = re.compile(r"^\s*-\s*(CKV2?_[A-Z]+_\d+)\s*(?:#\s*(.*))?$")

# Controls this template must keep passing (docs/deploy.md and B5 of the reference list them);
# none of them may ever be skipped. (CKV_AZURE_78, FTP off, reads only siteConfig.ftpsState, which
# Flex Consumption refuses: it is skipped in infra/.checkov.yaml and FTP-off is asserted by
# tests/infra/test_structure.py on the publishing-credentials policy instead.)
REQUIRED_PASSES = {
    "CKV_AZURE_3": "storage: HTTPS traffic only",
    "CKV_AZURE_44": "storage: TLS 1.2 minimum",
    "CKV_AZURE_34": "blob containers: no public access",
    "CKV_AZURE_70": "function app: HTTPS only",
    "CKV_AZURE_145": "function app: TLS 1.2 minimum",
    "CKV_AZURE_72": "function app: remote debugging off",
    "CKV_AZURE_67": "function app: latest HTTP version",
    "CKV_AZURE_62": "function app: CORS not open to every origin",
    "CKV_AZURE_71": "function app: managed identity",
    "CKV_AZURE_56": "function app: authentication (Easy Auth when enabled)",
}


def skip_entries() -> dict[str, str]:
    """The skip-check list of infra/.checkov.yaml: check id -> the reason in its comment."""
    entries: dict[str, str] = {}
    in_list = False
    for line in CONFIG.read_text().splitlines():
        if re.match(r"^[A-Za-z-]+:", line):
            in_list = line.startswith("skip-check:")
            continue
        match = SKIP_ENTRY.match(line)
        if in_list and match:
            assert match.group(1) not in entries, f"{match.group(1)} listed twice"
            entries[match.group(1)] = (match.group(2) or "").strip()
    return entries


@pytest.fixture(scope="session")
def checkov_report() -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV.relative_to(ROOT)} is missing: run scripts/bootstrap.sh "
                    "(it installs tools-requirements.txt)")
    env = {
        **os.environ,
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",  # no version check against the package index
        "BC_SKIP_MAPPING": "TRUE",  # belt and braces for skip-download: no platform mapping download
    }
    proc = subprocess.run(
        [str(CHECKOV), "--config-file", str(CONFIG), "--output", "json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.stdout.strip(), f"checkov printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    raw = json.loads(proc.stdout)
    reports = raw if isinstance(raw, list) else [raw]
    assert len(reports) == 1 and reports[0]["check_type"] == "bicep", [r.get("check_type") for r in reports]
    report: dict[str, Any] = reports[0]
    report["exit_code"] = proc.returncode
    report["stderr"] = proc.stderr
    return report


def test_checkov_passes(checkov_report: dict[str, Any]) -> None:
    failed = [
        f"{r['check_id']} {r['check_name']} @ {r['file_path']}:{r['resource']}"
        for r in checkov_report["results"]["failed_checks"]
    ]
    assert not failed, (
        "checkov findings (fix them, or skip with a reason in infra/.checkov.yaml):\n" + "\n".join(failed)
    )
    assert checkov_report["summary"]["parsing_errors"] == 0, checkov_report["results"].get("parsing_errors")
    assert checkov_report["exit_code"] == 0, checkov_report["stderr"][-2000:]


def test_checkov_scanned_every_template(checkov_report: dict[str, Any]) -> None:
    scanned = {r["file_path"].lstrip("/") for r in checkov_report["results"]["passed_checks"]}
    for name in ("modules/storage.bicep", "modules/function-app.bicep"):
        assert name in scanned, f"checkov did not evaluate {name}: {sorted(scanned)}"
    assert checkov_report["summary"]["passed"] >= len(REQUIRED_PASSES)


def test_required_controls_pass(checkov_report: dict[str, Any]) -> None:
    passed = {r["check_id"] for r in checkov_report["results"]["passed_checks"]}
    missing = {check: what for check, what in REQUIRED_PASSES.items() if check not in passed}
    assert not missing, f"required controls not evaluated as passed: {missing}"


def test_every_skip_has_a_reason_and_spares_the_required_controls() -> None:
    entries = skip_entries()
    assert entries, "infra/.checkov.yaml lists no skip-check entries (the test would not see a misparse)"
    no_reason = [check for check, reason in entries.items() if len(reason) < 15]
    assert not no_reason, f"skips without a reason comment: {no_reason}"
    assert not set(entries) & set(REQUIRED_PASSES), "a required control is skipped"


def test_skips_live_in_one_file() -> None:
    # Inline suppressions would hide skips from the list in infra/.checkov.yaml.
    for path in INFRA.rglob("*.bicep"):
        assert "checkov:skip" not in path.read_text(), path
    assert not (ROOT / ".checkov.yaml").exists() and not (ROOT / ".checkov.yml").exists()
