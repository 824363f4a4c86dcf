"""A loopback TCP proxy that can cut a database away from every process and give it back.

The reliability tests put it between the Dagster processes (webserver, daemon, code servers, run
workers) and PostgreSQL. ``cut()`` is what a failed-over or rebooted database looks like from a
client: every open connection is reset at once and new ones are refused (the listening socket is
closed, so a connect answers ``ECONNREFUSED``) until ``restore()`` listens again on the same port.

It runs an asyncio loop in a daemon thread of the test process and copies bytes both ways without
looking at them; nothing but loopback is ever bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator

__all__ = ["TcpProxy", "proxy_to"]

CHUNK = 65536


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``upstream_host:upstream_port``.

    Args:
        upstream_host: Where connections go (a loopback database).
        upstream_port: Its port.

    Attributes:
        port: The proxy's own port (fixed for its lifetime, across cuts).
        accepted: Connections accepted so far.
        reset: Connections reset by ``cut()`` so far.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.accepted = 0
        self.reset = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self.is_cut = False

    # -------------------------------------------------------------------------------- control

    def start(self) -> TcpProxy:
        """Start the loop and listen on a free loopback port."""
        self._thread.start()
        # Bind once to learn a free port, then listen on it (and on the same one after each cut).
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._call(self._listen())
        return self

    def cut(self) -> int:
        """Reset every open connection and refuse new ones; returns how many were reset."""
        return self._call(self._cut())

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        self._call(self._listen())

    def close(self) -> None:
        """Cut everything and stop the loop."""
        with contextlib.suppress(Exception):
            self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self._loop.close()

    def _call(self, coro):  # a coroutine; its result
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=15)

    # ------------------------------------------------------------------------------ the loop

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.is_cut = False

    async def _cut(self) -> int:
        self.is_cut = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        victims = list(self._transports)
        for transport in victims:
            transport.abort()  # RST, like a database host that went away
        self._transports.clear()
        self.reset += len(victims)
        return len(victims)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            client_writer.transport.abort()
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.transport.abort()
            return
        pair = (client_writer.transport, up_writer.transport)
        self._transports.update(pair)
        try:
            await asyncio.gather(self._pipe(client_reader, up_writer), self._pipe(up_reader, client_writer))
        finally:
            for transport in pair:
                self._transports.discard(transport)
                transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            # Pass the end of one direction on (half-close); the other direction ends by itself.
            with contextlib.suppress(Exception):
                if not writer.transport.is_closing() and writer.can_write_eof():
                    writer.write_eof()


@contextlib.contextmanager
def proxy_to(upstream_host: str, upstream_port: int) -> Iterator[TcpProxy]:
    """A started proxy, closed on exit."""
    proxy = TcpProxy(upstream_host, upstream_port).start()
    try:
        yield proxy
    finally:
        proxy.close()
