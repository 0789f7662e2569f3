"""A counting TCP relay in front of Azurite: every HTTP request any process sends to storage.

Bytes pass through unchanged (so shared-key signatures stay valid); the client-to-server stream
is parsed just enough to find each request's head and skip its body (Content-Length or chunked),
and each head counts one call for its service. Used only by the calls pass (bench/e2e.py): the
timed passes go to Azurite directly, so the relay's own hop and CPU are in none of their figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import Counter
from dataclasses import dataclass, field

from devhost.azurite import HOST

_CHUNK = 65536


class RequestParser:
    """Counts the requests in one connection's client-to-server bytes, fed in any pieces."""

    def __init__(self) -> None:
        self.count = 0
        self._buffer = b""
        self._body_left = 0
        self._chunked = False

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if self._body_left:
                taken = min(self._body_left, len(self._buffer))
                self._buffer = self._buffer[taken:]
                self._body_left -= taken
                if self._body_left:
                    return
            if self._chunked:
                end = self._buffer.find(b"0\r\n\r\n")
                if end < 0:
                    self._buffer = self._buffer[-4:]
                    return
                self._buffer = self._buffer[end + 5:]
                self._chunked = False
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self._buffer[:head_end].decode("latin-1").lower()
            self._buffer = self._buffer[head_end + 4:]
            self.count += 1
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip() == "content-length":
                    self._body_left = int(value.strip() or 0)
                elif name.strip() == "transfer-encoding" and "chunked" in value:
                    self._chunked = True


@dataclass
class CountingProxy:
    """One listener per service, each relaying to the matching Azurite port."""

    targets: dict[str, int]  # service name -> Azurite port
    ports: dict[str, int] = field(default_factory=dict)  # service name -> this relay's port
    calls: Counter[str] = field(default_factory=Counter)
    _servers: list[asyncio.Server] = field(default_factory=list)

    async def start(self) -> None:
        for service, target in self.targets.items():
            server = await asyncio.start_server(functools.partial(self._relay, service=service, target=target),
                                                HOST, 0)
            self._servers.append(server)
            self.ports[service] = int(server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, service: str,
                     target: int) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(HOST, target)
        except OSError:
            writer.close()
            return
        parser = RequestParser()

        async def requests() -> None:
            while data := await reader.read(_CHUNK):
                before = parser.count
                parser.feed(data)
                self.calls[service] += parser.count - before
                upstream_writer.write(data)
                await upstream_writer.drain()
            upstream_writer.close()

        async def responses() -> None:
            while data := await upstream_reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
            writer.close()

        with contextlib.suppress(OSError, ConnectionError):
            await asyncio.gather(requests(), responses())
        for w in (writer, upstream_writer):
            w.close()

    def total(self) -> int:
        return sum(self.calls.values())

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
