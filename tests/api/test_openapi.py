"""The OpenAPI document covers every route of function_app.py and every response it gives."""

from __future__ import annotations

import re
import uuid

from shared.api.openapi import OPERATIONS, documented_statuses, openapi_document
from tests.support import Api, function_routes, run_until_settled

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _template(pattern: re.Pattern[str]) -> str:
    return re.sub(r"\(\?P<(\w+)>\[\^/\]\+\)", r"{\1}", pattern.pattern.strip("^$"))


def test_every_route_of_the_app_is_in_the_document() -> None:
    app_paths = {_template(pattern) for pattern, _ in function_routes() if ".*" not in pattern.pattern}
    doc_paths = set(openapi_document()["paths"])
    assert app_paths == doc_paths
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            assert op["responses"], (method, path)
            assert "405" in op["responses"] and "500" in op["responses"]
            if op["security"]:
                assert {"401", "403"} <= set(op["responses"]), (method, path)
    schemas = document["components"]["schemas"]
    assert {"SubmitRequest", "Accepted", "JobStatusView", "JobList", "Problem"} <= set(schemas)
    assert "idempotencyKey" not in schemas["SubmitRequest"]["properties"]  # derived by the server


async def test_the_app_serves_exactly_the_documented_methods(api: Api) -> None:
    for pattern, _ in function_routes():
        if ".*" in pattern.pattern:  # the catch-all: every method of every other path is ROUTE_NOT_FOUND
            continue
        template = _template(pattern)
        path = template.replace("{jobId}", str(uuid.uuid4()))
        documented = {op.method.upper() for op in OPERATIONS if op.path == template}
        for method in METHODS:
            res = await api.call(method, path, {} if method != "GET" else None)
            if method in documented:
                assert res.status != 405, (method, path)
            else:
                assert res.status == 405 and res.code == "METHOD_NOT_ALLOWED", (method, path, res.status)


async def test_every_response_the_operations_give_is_documented(api: Api) -> None:
    observed: list[tuple[str, str, int]] = []

    async def call(method: str, template: str, path: str, body: object = None, **kwargs: object) -> object:
        res = await api.call(method, path, body, **kwargs)  # type: ignore[arg-type]
        observed.append((method, template, res.status))
        return res

    subject = str(uuid.uuid4())
    submit = {"jobType": "probe", "subjectId": subject, "payload": {"tag": "doc", "permanent": True}}
    accepted = await call("POST", "/api/jobs", "/api/jobs", submit)
    job = accepted.body["jobId"]  # type: ignore[attr-defined]
    await call("POST", "/api/jobs", "/api/jobs", {**submit, "payload": {"tag": "doc", "permanent": False}})
    await call("POST", "/api/jobs", "/api/jobs", {"jobType": "nope", "subjectId": subject, "payload": {}})
    await call("POST", "/api/jobs", "/api/jobs", raw=b"{", token="default")
    await call("POST", "/api/jobs", "/api/jobs", raw=b"x" * 70_000)
    await call("POST", "/api/jobs", "/api/jobs", raw=b"{}", headers={"content-type": "text/plain"})
    await call("POST", "/api/jobs", "/api/jobs", submit, token=None)
    await call("POST", "/api/jobs", "/api/jobs", submit, token=api.token(scopes=("Jobs.Read",)))
    await call("GET", "/api/jobs", "/api/jobs?pageSize=5")
    await call("GET", "/api/jobs", "/api/jobs?status=bogus")
    await call("POST", "/api/analysis/enqueue", "/api/analysis/enqueue", {"documentId": subject, "type": "summary"})
    await call("POST", "/api/analysis/enqueue", "/api/analysis/enqueue", {"documentId": subject, "type": "poetry"})
    status = "/api/jobs/{jobId}/status"
    await call("GET", status, f"/api/jobs/{job}/status?history=true")
    await call("GET", status, f"/api/jobs/{uuid.uuid4()}/status")
    await call("POST", "/api/jobs/{jobId}/retry", f"/api/jobs/{job}/retry")  # Queued: not retryable
    await run_until_settled(api.runtime, uuid.UUID(job))
    await call("POST", "/api/jobs/{jobId}/retry", f"/api/jobs/{job}/retry")  # Failed: re-driven
    await call("POST", "/api/jobs/{jobId}/cancel", f"/api/jobs/{job}/cancel")  # Queued again: cancelled now
    await call("POST", "/api/jobs/{jobId}/cancel", f"/api/jobs/{job}/cancel")  # terminal: 409
    await call("GET", "/api/health", "/api/health", token=None)
    await call("GET", "/api/openapi.json", "/api/openapi.json", token=None)
    undocumented = [(m, t, s) for m, t, s in observed if s not in documented_statuses(m, t)]
    assert undocumented == []
    assert {s for _, _, s in observed} >= {200, 202, 400, 401, 403, 404, 409, 413, 415, 422}
