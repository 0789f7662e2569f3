"""Worker indexing: import the script module and get its functions, as the Python worker does.

The worker imports ``function_app`` and takes the one module-level ``FunctionRegister`` (usually
``func.FunctionApp()``). ``get_functions()`` records the names it returned and raises ValueError on
a second call, so the result is cached per app object: several hosts (or tests) in one process can
index the same module.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func

from devhost.errors import DevHostError

_CACHE: dict[int, tuple[object, list[Any]]] = {}


def import_app_module(module_name: str, project_dir: Path) -> ModuleType:
    """Import the script module with the project folder first on ``sys.path``."""
    folder = str(project_dir)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            raise DevHostError(f"cannot find the function app module {module_name!r} in {project_dir}") from error
        raise


def find_function_register(module: ModuleType) -> Any:
    """Return the single module-level FunctionRegister; none or several is an indexing error."""
    found = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
    unique = list({id(app): app for app in found}.values())
    if len(unique) != 1:
        raise DevHostError(
            f"{module.__name__}: expected exactly one module-level FunctionApp (FunctionRegister), found {len(unique)}"
        )
    return unique[0]


def get_functions(app: Any) -> list[Any]:
    """``app.get_functions()``, called at most once per app object."""
    cached = _CACHE.get(id(app))
    if cached is not None and cached[0] is app:
        return cached[1]
    if getattr(app, "functions_bindings", None):
        # Someone (a test, a script) already called get_functions(): a second call would raise,
        # so build the functions the same way get_functions() does.
        functions = [builder.build(app.auth_level) for builder in app._function_builders]
    else:
        functions = list(app.get_functions())
    _CACHE[id(app)] = (app, functions)
    return functions


def load_functions(module_name: str, project_dir: Path) -> list[Any]:
    """Import the app and return its ``azure.functions`` Function objects."""
    module = import_app_module(module_name, project_dir)
    return get_functions(find_function_register(module))
