"""A tiny scripted HTTP server on 127.0.0.1 for the client's unit tests.

Replies are queued per (method, path): each request takes the next one, and the last one repeats.
Every request is recorded with its arrival time, so tests can check what was sent and when.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class FakeApi:
    def __init__(self) -> None:
        self.replies: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[Seen] = []
        self.url = ""
        self.lock = threading.Lock()

    def add(self, method: str, path: str, status: int, body: Any = None, *, headers: dict[str, str] | None = None,
            raw: bytes | None = None) -> FakeApi:
        self.replies.setdefault((method, path), []).append(Reply(status, body, headers or {}, raw))
        return self

    def problem(self, method: str, path: str, status: int, code: str, detail: str = "it went wrong", *,
                headers: dict[str, str] | None = None, **extra: Any) -> FakeApi:
        body = {"type": f"https://errors.example/{code}", "title": code, "status": status, "code": code,
                "detail": detail, "correlationId": "11111111-2222-4333-8444-555555555555", **extra}
        return self.add(method, path, status, body,
                        headers={"Content-Type": "application/problem+json", **(headers or {})})

    def next_reply(self, method: str, path: str) -> Reply:
        with self.lock:
            queue = self.replies.get((method, path))
            if not queue:
                return Reply(404, {"code": "ROUTE_NOT_FOUND", "detail": f"{method} {path}"})
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def seen(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [r for r in self.requests if (method is None or r.method == method) and (path is None or r.path == path)]


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            api.requests.append(Seen(self.command, parts.path, parse_qs(parts.query),
                                     {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()))
            reply = api.next_reply(self.command, parts.path)
            data = reply.raw if reply.raw is not None else (json.dumps(reply.body).encode() if reply.body is not None
                                                           else b"")
            self.send_response(reply.status)
            headers = {"Content-Type": "application/json", "x-correlation-id":
                       self.headers.get("x-correlation-id") or "00000000-0000-4000-8000-000000000000", **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    return Handler


@contextmanager
def serve() -> Iterator[FakeApi]:
    api = FakeApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


JOB_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SUBJECT_ID = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"


def status_body(status: str = "Running", **extra: Any) -> dict[str, Any]:
    return {
        "jobId": JOB_ID, "jobType": "doc-index", "subjectId": SUBJECT_ID, "status": status, "attempt": 1,
        "maxAttempts": 5, "run": 1, "createdAt": "2025-01-02T03:04:05.678Z",
        "lastUpdatedAt": "2025-01-02T03:04:06.000Z", "correlationId": "c0ffee00-0000-4000-8000-000000000001",
        "idempotencyKey": f"doc-{SUBJECT_ID}-v1", "statusUrl": f"/api/jobs/{JOB_ID}/status",
        "cancelRequested": False, **extra,
    }


def accepted_body(status: str = "Queued") -> dict[str, Any]:
    return {"jobId": JOB_ID, "status": status, "statusUrl": f"/api/jobs/{JOB_ID}/status"}
