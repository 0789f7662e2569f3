"""Every Bicep file parses (pycep-parser: syntax only; the Bicep compiler is not available offline)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lark.exceptions import UnexpectedInput

from tests.infra.templates import INFRA, MAIN, MODULES, bicep_files, main, parse, parser


def test_the_templates_exist() -> None:
    names = {path.relative_to(INFRA).as_posix() for path in bicep_files()}
    assert "main.bicep" in names
    assert {p.name for p in MODULES.glob("*.bicep")} >= {
        "identity.bicep", "storage.bicep", "monitoring.bicep", "rbac.bicep", "function-app.bicep",
        "easy-auth.bicep", "alerts.bicep", "workbook.bicep",
    }


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path: Path) -> None:
    template = parse(path)
    assert template.get("resources") or template.get("modules"), f"{path} declares nothing"


def test_the_parser_rejects_a_broken_template(tmp_path: Path) -> None:
    # Guards against a parse test that passes on anything.
    broken = tmp_path / "broken.bicep"
    broken.write_text("resource x 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name:\n}\n")
    with pytest.raises(UnexpectedInput):
        parser().parse(file_path=broken)


def test_main_is_azd_shaped() -> None:
    template = main()
    assert template["globals"]["scope"]["value"] == "subscription"
    for name in ("environmentName", "location", "principalId"):
        assert name in template["parameters"], name
    for module_name, declaration in template["modules"].items():
        assert declaration["type"] == "local", f"module {module_name} must be a local file (no registry modules)"
        assert (MAIN.parent / declaration["detail"]["path"]).is_file(), declaration["detail"]["path"]


def test_no_registry_modules() -> None:
    for path in bicep_files():
        assert "br/public:" not in path.read_text() and "br:" not in path.read_text(), path
