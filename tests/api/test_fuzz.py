"""Property: random JSON bodies and headers never produce a 5xx (or a response without a code)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import Api

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
JOB_TYPES = st.sampled_from(["doc-index", "ai-analyze", "email-process", "probe", "", "x" * 100])
SUBJECTS = st.one_of(st.uuids().map(str), st.text(max_size=40), st.integers())
PAYLOADS = st.one_of(
    JSON,
    st.fixed_dictionaries({"rowVersion": st.integers(), "action": st.sampled_from(["index", "remove", "x"])}),
    st.fixed_dictionaries({"analysisType": st.text(max_size=20)}),
    st.fixed_dictionaries({"messageId": st.text(max_size=300)}),
)
BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries({"jobType": JOB_TYPES, "subjectId": SUBJECTS, "payload": PAYLOADS},
                          optional={"extra": JSON}),
    st.fixed_dictionaries({"documentId": SUBJECTS, "type": st.text(max_size=20)}),
)
HEADERS = st.fixed_dictionaries({}, optional={
    "content-type": st.sampled_from(["application/json", "text/plain", "application/json; charset=utf-8", ""]),
    "x-correlation-id": st.text(max_size=80),
    "traceparent": st.text(max_size=80),
})
ROUTES = st.sampled_from([
    ("POST", "/api/jobs"), ("GET", "/api/jobs"), ("POST", "/api/analysis/enqueue"),
    ("GET", "/api/jobs/{id}/status"), ("POST", "/api/jobs/{id}/cancel"), ("POST", "/api/jobs/{id}/retry"),
    ("PUT", "/api/jobs"), ("GET", "/api/health"),
])
TOKENS = st.sampled_from(["valid", "none", "garbage"])


async def test_random_requests_never_produce_a_server_error(api: Api) -> None:
    loop = asyncio.get_running_loop()
    valid = api.token()
    failures: list[Any] = []
    real = await api.call("POST", "/api/jobs", {"jobType": "probe", "subjectId": str(uuid.uuid4()),
                                                "payload": {"tag": "fuzz-target"}})
    known_ids = [real.body["jobId"]]  # status, cancel and retry also meet a job that exists, not only 404s

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(route=ROUTES, body=BODIES, headers=HEADERS, token=TOKENS, raw=st.booleans(), query=st.text(max_size=30),
           existing=st.booleans())
    def check(route: tuple[str, str], body: Any, headers: dict[str, str], token: str, raw: bool, query: str,
              existing: bool) -> None:
        method, template = route
        path = template.replace("{id}", known_ids[0] if existing else str(uuid.uuid4()))
        if method == "GET" and template == "/api/jobs" and query:
            path += "?" + query.replace("#", "")
        data = json.dumps(body).encode() if not raw else str(body).encode()
        auth = {"valid": valid, "none": None, "garbage": "x.y.z"}[token]
        safe_headers = {k: v.replace("\n", " ").replace("\r", " ") for k, v in headers.items()}
        res = asyncio.run_coroutine_threadsafe(
            api.call(method, path, raw=data, token=auth, headers=safe_headers), loop).result(timeout=60)
        if res.status >= 500 or (res.status >= 400 and not res.code):
            failures.append((method, path, body, headers, res.status, res.body))
        assert res.status < 500, (method, path, body, res.body)

    await asyncio.to_thread(check)
    assert failures == []


async def test_the_inputs_a_fuzzer_found_answer_4xx_problems_not_500s(api: Api) -> None:
    job = (await api.call("POST", "/api/jobs", {"jobType": "probe", "subjectId": str(uuid.uuid4()),
                                                "payload": {"tag": "fuzzed"}})).body["jobId"]
    cases = {
        "/api/jobs?pageSize=%C2%B2": (400, "REQUEST_INVALID"),  # '²'.isdigit() is True; int('²') raises
        f"/api/jobs?continuationToken={'[' * 1500}": (400, "REQUEST_INVALID"),  # json.loads: RecursionError
        "/api/jobs/%0A/cancel": (404, "JOB_NOT_FOUND"),
        "/api/nothing/here": (404, "ROUTE_NOT_FOUND"),
        f"/api/jobs/{job}/status/extra": (404, "ROUTE_NOT_FOUND"),
    }
    for path, (status, code) in cases.items():
        method = "POST" if path.endswith("/cancel") else "GET"
        res = await api.call(method, path)
        assert (res.status, res.code) == (status, code), (path, res.body)
        assert res.headers["x-content-type-options"] == "nosniff"
    unknown = await api.call("DELETE", "/api/nowhere", token=None)
    assert (unknown.status, unknown.code) == (404, "ROUTE_NOT_FOUND")
