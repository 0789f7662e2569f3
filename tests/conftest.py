"""Shared fixtures: one real Azurite per test session, started and stopped by the tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devhost.azurite import Azurite, start_azurite
from devhost.issuer import DevIssuer, serve_jwks
from shared.engine.runtime import Runtime
from tests.support import Api, RequestLog, make_runtime, make_settings


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    log = Path(tmp_path_factory.mktemp("azurite")) / "azurite.log"
    instance = start_azurite(log_path=log)
    os.environ["AZURITE_TEST_CONNECTION_STRING"] = instance.connection_string
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def request_log() -> RequestLog:
    return RequestLog()


@pytest.fixture
async def runtime(azurite: Azurite, request_log: RequestLog) -> AsyncIterator[Runtime]:
    rt = await make_runtime(make_settings(azurite.connection_string), request_log)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer(Path(tmp_path_factory.mktemp("issuer")))


@pytest.fixture(scope="session")
def jwks_url(issuer: DevIssuer) -> Iterator[str]:
    with serve_jwks(issuer) as url:
        yield url


@pytest.fixture
async def api_runtime(azurite: Azurite, request_log: RequestLog, jwks_url: str) -> AsyncIterator[Runtime]:
    rt = await make_runtime(make_settings(azurite.connection_string, JOBS_AUTH_JWKS_URI=jwks_url), request_log)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
def api(api_runtime: Runtime, issuer: DevIssuer) -> Api:
    return Api(api_runtime, issuer)
