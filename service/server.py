"""How the API is served: uvicorn on httptools, with the limits httptools lacks.

httptools buffers a request line and headers of any size and waits for them
forever, so the protocol here counts the bytes of each request head as they
arrive and refuses one that grows past `max_header_bytes` (431, then closes),
holds more than `max_headers` lines (431), or is not complete within
`header_timeout_seconds` of its first byte (or of the connection opening; 408).
Request bodies are timed by `service.limits.BodyLimit`.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from xsmoe.service.settings import ApiSettings


class BoundedHttpTools(HttpToolsProtocol):
    max_header_bytes = 32 << 10
    max_headers = 100
    header_timeout_seconds = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True
        self._head_seen = 0  # bytes received while this head is incomplete
        self._head_size = 0  # request line + header lines parsed so far
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    @classmethod
    def limited(cls, api: ApiSettings) -> type[BoundedHttpTools]:
        """This protocol with the deployment's limits (uvicorn builds one per connection)."""
        limits = {
            "max_header_bytes": api.max_header_bytes,
            "max_headers": api.max_headers,
            "header_timeout_seconds": api.header_timeout_seconds,
        }
        return type("BoundedHttpTools", (cls,), limits)

    # -- connection ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # a connection that never sends a request is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading_head and self._head_timer is None:
            self._arm_head_timer()
        super().data_received(data)  # the parser's callbacks below may end the head
        if self._reading_head and not self._refused:
            self._head_seen += len(data)
            if self._head_seen > self.max_header_bytes:
                self._refuse(431, f"request line and headers over {self.max_header_bytes} bytes")

    # -- parser callbacks ---------------------------------------------------------
    def on_message_begin(self) -> None:
        if not self._refused:
            super().on_message_begin()
            self._head_size = 0

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            super().on_url(url)
            self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._refused:
            super().on_header(name, value)
            self._head_size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._reading_head = False
        self._head_seen = 0
        self._disarm_head_timer()
        if self._head_size > self.max_header_bytes:
            self._refuse(431, f"request line and headers over {self.max_header_bytes} bytes")
        elif len(self.headers) > self.max_headers:
            self._refuse(431, f"{len(self.headers)} header lines; the limit is {self.max_headers}")
        else:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()
            self._reading_head = True  # what arrives next starts the next request's head

    # -- refusals -----------------------------------------------------------------
    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_seconds, self._head_too_slow)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self._reading_head or self.transport.is_closing():
            return
        if self._head_seen or self._head_size:
            self._refuse(408, f"request headers not complete in {self.header_timeout_seconds} s")
        else:
            self.transport.close()  # idle: nothing to answer

    def _refuse(self, status: int, detail: str) -> None:
        """Answer once, without the app, and close: the rest of the stream is unparsed."""
        self._refused = True
        self._disarm_head_timer()
        code = {408: "request_timeout", 431: "headers_too_large"}[status]
        body = json.dumps({"error": code, "detail": detail}).encode()
        head = [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def server_config(
    app: Any, api: ApiSettings, *, host: str, port: int, access_log: bool = False
) -> uvicorn.Config:
    """The uvicorn config `xsmoe serve` runs (tests start the same on a free port)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # the entrypoint's
        access_log=access_log,
        loop="uvloop",
        http=BoundedHttpTools.limited(api),
        timeout_keep_alive=api.keep_alive_seconds,
        timeout_graceful_shutdown=5,
    )


class ProcessHeader:
    """Names the answering process (`x-xsmoe-pid`) when several share a port: /metrics and
    the dashboard are per process, so a reader needs to know which one answered."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.header = (b"x-xsmoe-pid", str(os.getpid()).encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)  # type: ignore[no-any-return]

        async def send_with_pid(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), self.header]}
            await send(message)

        return await self.app(scope, receive, send_with_pid)  # type: ignore[no-any-return]
