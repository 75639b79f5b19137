"""Request body limits, enforced before any parsing: a clear 413 or 408, never a hang."""

from __future__ import annotations

import asyncio
import json

from xsmoe.service.metrics import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Buffers the body up to a per-path limit; larger bodies get 413 at once, and a
    body whose next piece does not come within `timeout` seconds gets 408."""

    def __init__(self, app: ASGIApp, json_limit: int, upload_limit: int, timeout: float) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        upload = str(scope.get("path", "")).startswith("/v1/items")
        limit = self.upload_limit if upload else self.json_limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            detail = f"request body is limited to {limit} bytes"
            await _refuse(send, 413, "payload_too_large", detail)
            return
        chunks, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except TimeoutError:  # a client that stalls mid-body holds no connection for long
                detail = f"request body incomplete: nothing new for {self.timeout:g} s"
                await _refuse(send, 408, "request_timeout", detail)
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                detail = f"request body is limited to {limit} bytes"
                await _refuse(send, 413, "payload_too_large", detail)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _refuse(send: Send, status: int, code: str, detail: str) -> None:
    """Answer and close: the rest of the body is never read, so the stream is unusable."""
    body = json.dumps({"error": code, "detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
