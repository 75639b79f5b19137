"""The blocking client."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from xsmoe_client.call import Call
from xsmoe_client.connection import Connection
from xsmoe_client.endpoint import SyncRunner
from xsmoe_client.retry import Outcome
from xsmoe_client.routes import Routes

T = TypeVar("T", bound=BaseModel)


class Client(Routes, Connection[httpx.Client], SyncRunner):
    """with Client("http://127.0.0.1:8000", api_key="...") as xs:
    xs.recommend(user_id="196", k=5).items"""

    def _open(self, options: dict[str, Any]) -> httpx.Client:
        return httpx.Client(**options)

    def send(self, call: Call[T]) -> T:
        attempts = self.retry.start(call.idempotent, call.answers)
        while (wait := attempts.wait_before_retry(outcome := self._attempt(call))) is not None:
            time.sleep(wait)
        return call.result(outcome)

    def _attempt(self, call: Call[T]) -> Outcome:
        try:
            return self.http.send(call.request(self.http))
        except httpx.TransportError as exc:
            return exc

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
