"""A real server for tests that need real sockets: the app under the uvicorn config
`xsmoe serve` runs, on a free port, in a thread of the test process."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from xsmoe.redis_server import free_port
from xsmoe.service.app import create_app
from xsmoe.service.server import server_config
from xsmoe.service.settings import ServiceSettings


@dataclass(frozen=True)
class Live:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connect(self, timeout: float = 10.0) -> socket.socket:
        """A raw connection; every read on it gives up after `timeout` seconds."""
        return socket.create_connection((self.host, self.port), timeout=timeout)


@contextlib.contextmanager
def live_server(settings: ServiceSettings) -> Iterator[Live]:
    port = free_port()
    config = server_config(create_app(settings), settings.api, host="127.0.0.1", port=port)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield Live("127.0.0.1", port)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or the read times out)."""
    data = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data
