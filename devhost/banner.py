"""The startup banner: where the host listens and what each function is bound to."""

from __future__ import annotations

from devhost.functions import HTTP_TRIGGER, FunctionSpec
from devhost.http_server import HEALTH_PATH, KEYS_PATH


def _line(spec: FunctionSpec, base_url: str, route_prefix: str) -> str:
    if spec.trigger_type == HTTP_TRIGGER:
        methods = ",".join(sorted(spec.methods)) if spec.methods else "ALL"
        path = "/".join(p for p in (route_prefix, spec.route or "") if p)
        return f"  {spec.name}: [{methods}] {base_url}/{path}"
    return f"  {spec.describe()}"


def render_banner(base_url: str, route_prefix: str, functions: list[FunctionSpec]) -> str:
    """A few lines for the terminal (tokens and secrets are never part of it)."""
    lines = [f"devhost listening on {base_url}", "", "Functions:"]
    lines += [_line(spec, base_url, route_prefix) for spec in functions] or ["  (none)"]
    lines += ["", f"JWKS: {base_url}{KEYS_PATH}   health: {base_url}{HEALTH_PATH}", "Press Ctrl+C to stop."]
    return "\n".join(lines)
