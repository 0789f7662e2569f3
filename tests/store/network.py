"""Network faults in front of a real Azurite: a TCP relay that can drop a reused connection, and
an endpoint that accepts connections and never answers. The SDK clients are the real ones."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

HOST = "127.0.0.1"


@dataclass
class Relay:
    """Relays TCP connections to one Azurite port and counts them.

    ``drop_next_reuse()``: the next request that arrives on a connection which already carried an
    answer is swallowed and the connection closed, as a server does that closes an idle
    keep-alive connection just as the client reuses it. The request never reaches Azurite."""

    target: int
    port: int = 0
    opened: int = 0
    peak: int = 0
    drops: int = 0
    _open: int = 0
    _drop_armed: bool = False
    _server: asyncio.Server | None = field(default=None, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    def drop_next_reuse(self) -> None:
        self._drop_armed = True

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._relay(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        self._open += 1
        self.peak = max(self.peak, self._open)
        answered = False
        up_reader, up_writer = await asyncio.open_connection(HOST, self.target)

        async def answers() -> None:
            nonlocal answered
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
                answered = True
            writer.close()

        downstream = asyncio.ensure_future(answers())
        try:
            while data := await reader.read(65536):
                if self._drop_armed and answered:
                    self._drop_armed = False
                    self.drops += 1
                    break
                up_writer.write(data)
                await up_writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._open -= 1
            downstream.cancel()
            with contextlib.suppress(BaseException):
                await downstream
            writer.close()
            up_writer.close()


@contextlib.asynccontextmanager
async def silent_endpoint() -> AsyncIterator[int]:
    """A port that accepts connections, reads what comes and never answers: a storage front end
    that hangs. Yields the port."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(hold, HOST, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in held:
            writer.close()
        await asyncio.sleep(0)  # let the handlers see their connections end
