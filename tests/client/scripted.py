"""A tiny real HTTP server that answers from a script (status, headers, body) and
records what it was sent: for what a healthy xsmoe server does not do on demand,
a 503 with Retry-After now and a 200 a moment later."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, dict[str, str], Any]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Script:
    answers: list[Answer]
    seen: list[Seen] = field(default_factory=list)
    url: str = ""


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = dict(self.headers.items())
            script.seen.append(Seen(self.command, self.path, headers, body, time.monotonic()))
            status, extra, answer = script.answers.pop(0) if script.answers else (500, {}, {})
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **extra}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test reads `seen`, not stderr

    return Handler


@contextlib.contextmanager
def scripted(*answers: Answer) -> Iterator[Script]:
    script = Script(list(answers))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    script.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
