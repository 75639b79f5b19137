"""A minimal keep-alive HTTP/1.1 client over asyncio streams, for load generation.

On two shared cores the load generator competes with the servers it measures,
so its CPU per request is taken from the API processes: this writes the request
bytes as they are and parses only the status line and Content-Length, where a
full client (httpx) builds request and response objects for every call. It speaks
only what the benches need: POST with a JSON body, a response with Content-Length
(FastAPI always sends one).
"""

from __future__ import annotations

import asyncio
import contextlib


class HttpError(Exception):
    """The connection failed or the reply was not HTTP we understand."""


class Connection:
    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body); a broken connection is reopened on the next call."""
        try:
            return await asyncio.wait_for(self._post(path, body), self.timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.close()
            raise HttpError(f"{self.host}:{self.port}: {exc!r}") from exc

    async def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        await self._writer.drain()
        reply = await self._reader.readuntil(b"\r\n\r\n")
        status = int(reply[9:12])
        length, close = 0, False
        for line in reply.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        payload = await self._reader.readexactly(length)
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):  # already reset by the peer
                await writer.wait_closed()
