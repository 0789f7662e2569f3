"""A fault-injecting HTTP/1.1 proxy between the hosts and one Azurite service (blob, queue or table).

Each client connection gets its own upstream connection; requests are forwarded one at a time,
whole (head and body), and so are responses. While faults are on, each request meets at most one
fault, drawn from the seeded plan:

- ``delay-request``: held before it is forwarded (the client's try may time out and retry);
- ``drop-request``: the connection is closed before the request reaches storage;
- ``delay-response``: the request is applied, its answer held back;
- ``drop-response``: the request is applied and its answer thrown away, the connection closed
  (the nasty case: the client cannot tell an applied write from a lost one).

A ``blackout`` refuses every request (connection closed at once) until it ends, as a network
partition would. Upstream connections are closed between Azurite restarts (``reset()``), so a
restarted Azurite meets fresh connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("chaos.proxy")
HOST = "127.0.0.1"
HEAD_LIMIT = 1024 * 1024
NO_BODY_STATUSES = frozenset({204, 304})


@dataclass
class FaultRates:
    """Probability of each fault per request while faults are on (at most one per request)."""

    delay_request: float = 0.04
    drop_request: float = 0.02
    delay_response: float = 0.04
    drop_response: float = 0.02
    max_delay: float = 1.5

    def scaled(self, factor: float) -> FaultRates:
        return FaultRates(self.delay_request * factor, self.drop_request * factor, self.delay_response * factor,
                          self.drop_response * factor, self.max_delay)


@dataclass
class FaultSwitch:
    """What the proxies do now: shared by the three services' proxies, flipped by the fault schedule."""

    rng: random.Random
    rates: FaultRates = field(default_factory=FaultRates)
    active: bool = False
    blackout: bool = False
    injected: Counter[str] = field(default_factory=Counter)

    def pick(self) -> str | None:
        if self.blackout:
            return "blackout-refused"
        if not self.active:
            return None
        roll, rates = self.rng.random(), self.rates
        for name, chance in (("delay-request", rates.delay_request), ("drop-request", rates.drop_request),
                             ("delay-response", rates.delay_response), ("drop-response", rates.drop_response)):
            if roll < chance:
                return name
            roll -= chance
        return None

    def delay(self) -> float:
        return self.rng.uniform(0.05, self.rates.max_delay)


class _Closed(Exception):
    """The peer closed the connection (or sent something this proxy does not understand)."""


@dataclass
class _Message:
    head: bytes
    body: bytes
    method: str = ""
    status: int = 0
    close: bool = False  # a Connection: close, or a body delimited by the end of the connection


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, str, dict[str, str]]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as error:
        raise _Closed from error
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return head, lines[0], headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = await reader.readuntil(b"\r\n")
        parts.append(line)
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                parts.append(trailer)
            parts.append(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size + 2))


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], *, to_eof: bool) -> tuple[bytes, bool]:
    """The body as it travels (chunks included), and whether it was delimited by the connection's end."""
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await _read_chunked(reader), False
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"])), False
        if to_eof:
            return await reader.read(), True
        return b"", False
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError) as error:
        raise _Closed from error


async def read_request(reader: asyncio.StreamReader) -> _Message:
    head, first, headers = await _read_head(reader)
    body, _ = await _read_body(reader, headers, to_eof=False)
    return _Message(head, body, method=first.split(" ", 1)[0].upper(),
                    close=headers.get("connection", "").lower() == "close")


async def read_response(reader: asyncio.StreamReader, method: str) -> _Message:
    while True:
        head, first, headers = await _read_head(reader)
        parts = first.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if not 100 <= status < 200:  # interim answers (100 Continue) are not forwarded: never asked for
            break
    if method == "HEAD" or status in NO_BODY_STATUSES:
        body, to_eof = b"", False
    else:
        body, to_eof = await _read_body(reader, headers, to_eof=True)
    return _Message(head, body, status=status, close=to_eof or headers.get("connection", "").lower() == "close")


class FaultProxy:
    """Listens on 127.0.0.1 and forwards to ``upstream_port``, injecting the switch's faults."""

    def __init__(self, name: str, upstream_port: int, switch: FaultSwitch, listen_port: int = 0):
        self.name, self.upstream_port, self.switch = name, upstream_port, switch
        self.port = listen_port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self.forwarded = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, self.port, limit=HEAD_LIMIT)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self.reset()
            await self._server.wait_closed()
            self._server = None

    def reset(self) -> None:
        """Close every connection in both directions (before Azurite restarts, and at the end)."""
        for writer in list(self._connections):
            writer.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        link = _Link(client_writer)
        self._connections.add(client_writer)
        try:
            while await self._exchange(await read_request(client_reader), link):
                pass
        except (_Closed, ConnectionError, OSError):
            return
        finally:
            for writer in (client_writer, link.upstream[1] if link.upstream else None):
                if writer is not None:
                    self._connections.discard(writer)
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()

    async def _exchange(self, request: _Message, link: _Link) -> bool:
        """Forward one request and its answer; False: close the connection."""
        fault = self.switch.pick()
        if fault is not None:
            self.switch.injected[fault] += 1
        if fault in ("blackout-refused", "drop-request"):
            return False
        if fault == "delay-request":
            await asyncio.sleep(self.switch.delay())
        if link.upstream is None:
            link.upstream = await asyncio.open_connection(HOST, self.upstream_port, limit=HEAD_LIMIT)
            self._connections.add(link.upstream[1])
        reader, writer = link.upstream
        writer.write(request.head + request.body)
        await writer.drain()
        response = await read_response(reader, request.method)
        self.forwarded += 1
        if fault == "drop-response":
            return False
        if fault == "delay-response":
            await asyncio.sleep(self.switch.delay())
        link.client.write(response.head + response.body)
        await link.client.drain()
        return not (request.close or response.close)


@dataclass
class _Link:
    """One client connection and the upstream connection opened for it (on its first request)."""

    client: asyncio.StreamWriter
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
