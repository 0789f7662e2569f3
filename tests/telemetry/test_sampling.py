"""The trace sampling the template states is what the Azure Monitor distro really does.

infra/modules/function-app.bicep sets OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG. Here the app's
own entry point (shared.observability.traces.configure_telemetry -> configure_azure_monitor) runs with those
settings in a fresh interpreter (the distro installs a process-wide tracer provider once), and
reports the sampler the distro built and how many of a burst of root spans it kept. Nothing is
sent: the connection string points at a closed local port, nothing is flushed (the child leaves
with os._exit), statsbeat is off and only environment-based resource detection runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.infra.templates import ROOT, decorator, main, module, template_app_settings

BURST = 2000  # root spans started back to back: far above the distro's default 5 traces per second

CHILD = r"""
import json, os, sys
from opentelemetry import trace
from shared.observability.traces import configure_telemetry
from azure.monitor.opentelemetry._version import VERSION
from azure.monitor.opentelemetry._utils.configurations import _get_configurations

ratios = json.loads(sys.argv[1])
parsed = {}
for ratio in ratios:  # what the distro makes of each value the template allows
    os.environ["OTEL_TRACES_SAMPLER_ARG"] = ratio
    parsed[ratio] = _get_configurations().get("sampling_ratio")
os.environ["OTEL_TRACES_SAMPLER_ARG"] = sys.argv[2]
if sys.argv[3] == "unset":
    del os.environ["OTEL_TRACES_SAMPLER"], os.environ["OTEL_TRACES_SAMPLER_ARG"]
assert configure_telemetry() is True
provider = trace.get_tracer_provider()
tracer = trace.get_tracer("sampling-test")
kept = 0
for _ in range(int(sys.argv[4])):
    span = tracer.start_span("job")
    kept += span.get_span_context().trace_flags.sampled
    span.end()
print(json.dumps({"version": VERSION, "sampler": type(provider.sampler).__name__,
                  "description": provider.sampler.get_description(), "kept": kept, "parsed": parsed}))
sys.stdout.flush()
os._exit(0)  # no exporter flush, no network
"""


def run_distro(tmp_path: Path, settings: dict[str, str], ratios: list[str], *, unset: bool = False) -> dict[str, Any]:
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "APPLICATIONINSIGHTS_"))
    }
    env.update({
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
                                                 "IngestionEndpoint=http://127.0.0.1:9/",
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "azure_app_service",  # env only, no metadata endpoint
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_TRACES_SAMPLER": settings["OTEL_TRACES_SAMPLER"],
        "TMPDIR": str(tmp_path),  # the exporter's offline storage, if it makes one
        "PYTHONPATH": str(ROOT),
    })
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(ratios), settings["OTEL_TRACES_SAMPLER_ARG"],
         "unset" if unset else "set", str(BURST)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def template_sampling() -> tuple[dict[str, str], list[str]]:
    """The two settings as Azure gets them by default: the sampler literal and the ratio parameter's default."""
    settings = template_app_settings()
    parameter = module("function-app")["parameters"][settings["OTEL_TRACES_SAMPLER_ARG"]]
    assert main()["parameters"]["traceSamplingRatio"]["default"] == parameter["default"]
    values = {"OTEL_TRACES_SAMPLER": settings["OTEL_TRACES_SAMPLER"], "OTEL_TRACES_SAMPLER_ARG": parameter["default"]}
    return values, list(decorator(parameter, "allowed"))


def test_the_templates_sampling_keeps_every_trace(tmp_path: Path) -> None:
    settings, allowed = template_sampling()
    result = run_distro(tmp_path, settings, allowed)
    assert result["version"].startswith("1.8."), f"re-check the distro's sampler names for {result['version']}"
    assert result["sampler"] == "ApplicationInsightsSampler", result  # microsoft.fixed_percentage, no fallback
    assert result["description"] == "ApplicationInsightsSampler1.0", result
    assert result["kept"] == BURST, f"{BURST - result['kept']} of {BURST} traces dropped"
    # Every ratio the template allows is taken as given (an invalid one would fall back to 1.0 with an error).
    assert result["parsed"] == {ratio: float(ratio) for ratio in allowed}


def test_without_the_settings_the_distro_rate_limits(tmp_path: Path) -> None:
    # Why the template states the sampler: the distro's default drops most of a burst.
    settings, _ = template_sampling()
    result = run_distro(tmp_path, settings, [], unset=True)
    assert result["sampler"] == "RateLimitedSampler", result
    assert result["kept"] < BURST // 2, result
