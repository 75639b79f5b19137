"""The asyncio client: the same methods as Client, each a coroutine."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from xsmoe_client.call import Call
from xsmoe_client.connection import Connection
from xsmoe_client.endpoint import AsyncRunner
from xsmoe_client.retry import Outcome
from xsmoe_client.routes import Routes

T = TypeVar("T", bound=BaseModel)


class AsyncClient(Routes, Connection[httpx.AsyncClient], AsyncRunner):
    """async with AsyncClient("http://127.0.0.1:8000", api_key="...") as xs:
    (await xs.recommend(user_id="196", k=5)).items"""

    def _open(self, options: dict[str, Any]) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options)

    async def send(self, call: Call[T]) -> T:
        attempts = self.retry.start(call.idempotent, call.answers)
        while (
            wait := attempts.wait_before_retry(outcome := await self._attempt(call))
        ) is not None:
            await asyncio.sleep(wait)
        return call.result(outcome)

    async def _attempt(self, call: Call[T]) -> Outcome:
        try:
            return await self.http.send(call.request(self.http))
        except httpx.TransportError as exc:
            return exc

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
