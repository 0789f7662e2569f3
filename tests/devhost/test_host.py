"""DevHost as a whole: timers, settings precedence, expression resolution and indexing errors."""

from __future__ import annotations

import importlib
import json
import os
import sys
import uuid
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest

from devhost.errors import DevHostError
from devhost.host import DevHost
from tests.devhost.conftest import HostFactory
from tests.devhost.helpers import SAMPLE_APP, wait_until


async def test_timer_fires_on_schedule_and_on_startup(
    start_host: HostFactory, sample: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_SCHEDULE", "*/1 * * * * *")
    await start_host()
    await wait_until(lambda: len(sample.CALLS["tick"]) >= 2, within=10)
    first, second = sample.CALLS["tick"][:2]
    assert first["type"] == "TimerRequest" and first["past_due"] is False
    assert second["at"] - first["at"] >= 0.5  # one per second, never twice for the same second
    assert sample.CALLS["startup_tick"] == [{"past_due": False}]  # run_on_startup, yearly schedule


async def test_environment_wins_over_local_settings(
    start_host: HostFactory, project_dir: Path, monkeypatch: pytest.MonkeyPatch, sample_env: dict[str, str]
) -> None:
    queue_from_file = f"f{uuid.uuid4().hex[:12]}"
    settings = {"Values": {"SAMPLE_GREETING": "from-file", "SAMPLE_ONLY_FILE": "file", "SAMPLE_QUEUE": queue_from_file}}
    (project_dir / "local.settings.json").write_text(json.dumps(settings), encoding="utf-8")
    monkeypatch.setenv("SAMPLE_GREETING", "from-env")
    monkeypatch.delenv("SAMPLE_QUEUE")
    host = await start_host()
    url = f"{host.base_url}/api/settings?names=SAMPLE_GREETING,SAMPLE_ONLY_FILE"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert await response.json() == {"SAMPLE_GREETING": "from-env", "SAMPLE_ONLY_FILE": "file"}
    queues = {f.name: f.queue_name for f in host.functions if f.queue_name}
    assert queues == {"work": queue_from_file, "work_poison": f"{queue_from_file}-poison"}  # %SAMPLE_QUEUE%-poison
    await host.stop()
    assert "SAMPLE_ONLY_FILE" not in os.environ  # values the host added are taken out again
    assert os.environ["SAMPLE_GREETING"] == "from-env"


async def test_unresolved_expression_fails_startup(
    project_dir: Path, sample_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAMPLE_QUEUE")
    host = DevHost(SAMPLE_APP, project_dir=project_dir, port=0)
    with pytest.raises(DevHostError, match="SAMPLE_QUEUE"):
        await host.start()


async def test_missing_connection_fails_startup(
    project_dir: Path, sample_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AzureWebJobsStorage")
    with pytest.raises(DevHostError, match="AzureWebJobsStorage"):
        await DevHost(SAMPLE_APP, project_dir=project_dir, port=0).start()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import azure.functions as func\n", "found 0"),
        ("import azure.functions as func\na = func.FunctionApp()\nb = func.FunctionApp()\n", "found 2"),
    ],
)
async def test_indexing_needs_exactly_one_app(tmp_path: Path, source: str, message: str) -> None:
    module = f"devhost_index_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(source, encoding="utf-8")
    with pytest.raises(DevHostError, match=message):
        await DevHost(module, project_dir=tmp_path, port=0).start()


async def test_second_host_reuses_the_indexed_functions(start_host: HostFactory) -> None:
    first = await start_host()
    second = await start_host()  # get_functions() would raise if called twice on the same app
    assert first.base_url != second.base_url
    assert [f.name for f in first.functions] == [f.name for f in second.functions]


async def test_async_context_manager_and_port(project_dir: Path, sample_env: dict[str, str]) -> None:
    async with DevHost(SAMPLE_APP, project_dir=project_dir, port=0) as host:
        port = int(host.base_url.rsplit(":", 1)[1])
        assert port > 0
        async with aiohttp.ClientSession() as http, http.get(f"{host.base_url}/.devhost/health") as response:
            assert response.status == 200
    assert (project_dir / ".devhost").exists() is False  # the issuer key is only made when asked for


async def test_app_already_indexed_by_someone_else(tmp_path: Path) -> None:
    module = f"devhost_index_{uuid.uuid4().hex[:8]}"
    source = (
        "import azure.functions as func\n"
        "app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)\n"
        "@app.route(route='ping')\n"
        "def ping(req: func.HttpRequest) -> str:\n"
        "    return 'pong'\n"
    )
    (tmp_path / f"{module}.py").write_text(source, encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.import_module(module).app.get_functions()  # a second get_functions() call would raise
    finally:
        sys.path.remove(str(tmp_path))
    async with (
        DevHost(module, project_dir=tmp_path, port=0) as host,
        aiohttp.ClientSession() as http,
        http.get(f"{host.base_url}/api/ping") as response,
    ):
        assert (response.status, await response.text()) == (200, "pong")
