"""An AsyncClient driven from a plain test function: it lives on an event loop in a
thread (anyio's blocking portal), and each method call runs there to completion,
so one test body checks both clients. An async iterator comes back as a list."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from xsmoe_client import AsyncClient


async def _complete(method: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    result = method(*args, **kwargs)
    if isinstance(result, AsyncIterator):
        return [item async for item in result]
    return await result if inspect.isawaitable(result) else result


class Blocking:
    def __init__(self, portal: BlockingPortal, client: AsyncClient) -> None:
        self._portal, self._client = portal, client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._portal.call(_complete, attr, args, kwargs)

        return call


@contextlib.contextmanager
def blocking(url: str, **options: Any) -> Iterator[Any]:
    with start_blocking_portal("asyncio") as portal:
        client = portal.call(_make, url, options)
        try:
            yield Blocking(portal, client)
        finally:
            portal.call(client.aclose)


async def _make(url: str, options: dict[str, Any]) -> AsyncClient:
    return AsyncClient(url, **options)
