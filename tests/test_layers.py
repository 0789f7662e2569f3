"""The layer rules that import-linter cannot state: only the API layer sees azure.functions.

import-linter (the contracts in pyproject.toml, run by the README's test command) names external
packages by their top level (``azure``), and the engine and store rightly import azure.core and
the storage SDKs; so confining ``azure.functions`` to shared/api (and function_app.py) is read
here from the source, import by import.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {ROOT / "function_app.py", *(ROOT / "shared" / "api").rglob("*.py")}


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def sees_azure_functions(path: Path) -> bool:
    return any(m == "azure.functions" or m.startswith("azure.functions.") for m in _imported_modules(path))


def test_only_the_api_layer_imports_azure_functions() -> None:
    app_code = [*(ROOT / "shared").rglob("*.py"), *(ROOT / "jobs").rglob("*.py")]
    offenders = sorted(str(p.relative_to(ROOT)) for p in app_code if p not in ALLOWED and sees_azure_functions(p))
    assert not offenders, f"only shared/api sees func.HttpRequest: {offenders}"
    assert sees_azure_functions(ROOT / "shared" / "api" / "request.py")  # the check reads real imports


def test_the_checker_finds_an_import_of_azure_functions(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("from azure.functions import HttpRequest\n")
    assert sees_azure_functions(sample)
    sample.write_text("import azure.core\nfrom azure.data.tables import TableClient\n")
    assert not sees_azure_functions(sample)


def test_only_the_lifecycle_writes_job_status() -> None:
    """The store's writes (``store.write``, ``store.insert``) are called from the lifecycle owner alone."""
    writers = sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "shared").rglob("*.py")
        if re.search(r"\bstore\.(write|insert)\(", p.read_text())
    )
    assert writers == ["shared/engine/lifecycle.py"], writers
