"""Serve a fake API on a loopback port for end-to-end tests (one implementation for every fake)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def serve_app(
    app: Any,
    *,
    name: str,
    host: str = "127.0.0.1",
    lifespan: str = "off",
    interface: str = "auto",
    startup_timeout: float = 10.0,
) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free port of ``host`` in a thread; yields ``http://host:port``.

    The socket is bound before the thread starts, so no other process can take the port in between.
    On exit the server is told to stop and its thread joined.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan=lifespan, interface=interface, access_log=False, ws="none", http="h11"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"fake-{name}-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the fake {name} server failed to start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the fake {name} server did not start within {startup_timeout} s")
            time.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()
