"""Every request gets an id: the client's X-Request-ID when it is a sane token, else
a fresh one. It is echoed in the response header and put on every log line written
while the request is handled (access line and error lines included)."""

from __future__ import annotations

import json
import re
import uuid

from starlette.datastructures import MutableHeaders

from xsmoe.common.logs import request_id
from xsmoe.service.errors import error_body
from xsmoe.service.metrics import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
MAX_LENGTH = 128
# What a proxy or client id looks like (UUIDs, hex, dotted or dashed tokens); anything
# else (spaces, quotes, control characters, over MAX_LENGTH) is replaced, not refused:
# a tracing header must never fail a request.
VALID = re.compile(rf"[A-Za-z0-9._:@+=/-]{{1,{MAX_LENGTH}}}")


def pick(value: str | None) -> str:
    if value is not None and VALID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None
        )
        rid = pick(given)
        scope.setdefault("state", {})["request_id"] = rid
        # Not reset on the way out: the unhandled-error handler runs outside this
        # middleware and must still log the id; the request's task ends with it.
        request_id.set(rid)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                headers[HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if not started:  # the outer error handler would answer without the header
                body = json.dumps(
                    error_body("internal", "unexpected server error; see the logs")
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (HEADER.lower().encode(), rid.encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
            raise
