"""The function app as devhost hosts it for the benchmark: function_app's own functions, unchanged,
with the bench job types (bench/jobtypes.py) added to its registry. ``python -m bench.host`` loads it."""

from __future__ import annotations

import function_app
from bench.jobtypes import BENCH_REGISTRY
from function_app import app
from shared.engine.runtime import RuntimeProvider

function_app.runtime = RuntimeProvider(BENCH_REGISTRY)  # every function looks the provider up at call time

__all__ = ["app"]
