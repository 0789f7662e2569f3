"""The two storage paths' retry policies, against real endpoints: a closed port, a port that never
answers, and Azurite with failures injected through azure-core's per-request hook."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError, ServiceResponseTimeoutError
from azure.core.pipeline import PipelineRequest

from devhost.azurite import Azurite, connection_string, free_port
from devhost.issuer import DevIssuer
from shared.engine.runtime import Runtime
from shared.store.clients import StorageClients
from shared.store.retries import API, BACKGROUND
from tests.store.network import silent_endpoint
from tests.support import TEST_REGISTRY, Api, RequestLog, make_settings


def test_each_policy_states_its_worst_case() -> None:
    assert API.worst_case_seconds == pytest.approx(3 * 1.2 + 0.1 + 0.2) == pytest.approx(3.9)
    assert API.worst_case_seconds < 5.0  # an outage answers 503 within 5 s
    assert BACKGROUND.worst_case_seconds == pytest.approx(6 * 20 + 1 + 2 + 4 + 8 + 16) == pytest.approx(151)
    assert BACKGROUND.retries > API.retries and BACKGROUND.try_timeout > API.try_timeout
    assert [BACKGROUND.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 16, 16]
    for retry in range(1, 6):
        assert BACKGROUND.delay(retry) / 2 <= BACKGROUND.backoff(retry) <= BACKGROUND.delay(retry)


async def test_the_api_policy_gives_up_within_its_bound_against_an_unreachable_endpoint() -> None:
    """Nothing listens on the ports: each service's call is tried 1 + retries times, then fails,
    well inside the policy's stated worst case."""
    dead = free_port()
    log = RequestLog()
    clients = StorageClients.create(make_settings(connection_string(dead, dead, dead)),
                                    client_options={"raw_request_hook": log.hook})
    try:
        calls = [lambda: clients.api.table("t").get_entity("p", "r"),
                 lambda: clients.api.queue("q").send_message("x"),
                 lambda: clients.api.container("c").get_blob_client("b").get_blob_properties()]
        for call in calls:
            mark = log.mark()
            started = time.monotonic()
            with pytest.raises(ServiceRequestError):
                await call()
            elapsed = time.monotonic() - started
            assert len(log.since(mark)) == API.retries + 1
            assert elapsed < API.worst_case_seconds
    finally:
        await clients.close()


async def test_a_try_that_gets_no_answer_ends_at_its_deadline() -> None:
    """A storage front end that accepts connections and never answers: a read is tried three times,
    each cut at the try deadline, and fails within 5 s; a POST is not tried again after a timeout
    (it may have been applied)."""
    log = RequestLog()
    async with silent_endpoint() as port:
        clients = StorageClients.create(make_settings(connection_string(port, port, port)),
                                        client_options={"raw_request_hook": log.hook})
        try:
            started = time.monotonic()
            with pytest.raises(ServiceResponseTimeoutError):
                await clients.api.table("t").get_entity("p", "r")
            elapsed = time.monotonic() - started
            assert len(log.requests) == API.retries + 1
            assert (API.retries + 1) * API.try_timeout <= elapsed < 5.0

            mark = log.mark()
            with pytest.raises(ServiceResponseTimeoutError):
                await clients.api.table("t").create_entity({"PartitionKey": "p", "RowKey": "r"})
            assert len(log.since(mark)) == 1
        finally:
            await clients.close()


async def test_the_background_policy_rides_out_failures_the_api_policy_reports(azurite: Azurite) -> None:
    """Three connection failures in a row: the API path gives up (3 tries), the background path
    succeeds on its fourth try. The hook sees every try of both sets (client_options reach both)."""
    seen: list[str] = []
    failures = {"left": 0}

    def hook(request: PipelineRequest[Any]) -> None:
        seen.append(request.http_request.method)
        if failures["left"] > 0:
            failures["left"] -= 1
            raise ServiceRequestError("injected connection failure")

    clients = StorageClients.create(make_settings(azurite.connection_string), client_options={"raw_request_hook": hook})
    name = f"t{uuid.uuid4().hex[:12]}"
    try:
        await clients.tables.create_table(name)
        failures["left"] = 3
        with pytest.raises(ServiceRequestError):
            await clients.api.table(name).create_entity({"PartitionKey": "p", "RowKey": "api"})
        assert failures["left"] == 0 and seen[-3:] == ["POST"] * 3

        failures["left"] = 3
        seen.clear()
        await clients.table(name).create_entity({"PartitionKey": "p", "RowKey": "background"})
        assert seen == ["POST"] * 4
        assert (await clients.api.table(name).get_entity("p", "background"))["RowKey"] == "background"
    finally:
        await clients.close()


async def test_the_http_routes_answer_503_within_5_seconds_when_storage_hangs(jwks_url: str,
                                                                              issuer: DevIssuer) -> None:
    """The routes run on the API path's clients: a status request against a storage that never
    answers is a 503 STORAGE_UNAVAILABLE within 5 s (the background path would wait minutes)."""
    async with silent_endpoint() as port:
        settings = make_settings(connection_string(port, port, port), JOBS_AUTH_JWKS_URI=jwks_url)
        runtime = Runtime(settings, TEST_REGISTRY, StorageClients.create(settings))
        try:
            assert runtime.api.clients is runtime.clients.api and runtime.api.clients.policy is API
            assert runtime.clients.policy is BACKGROUND
            started = time.monotonic()
            response = await Api(runtime, issuer).call("GET", f"/api/jobs/{uuid.uuid4()}/status")
            elapsed = time.monotonic() - started
        finally:
            await runtime.close()
    assert response.status == 503 and response.code == "STORAGE_UNAVAILABLE", response.body
    assert elapsed < 5.0
