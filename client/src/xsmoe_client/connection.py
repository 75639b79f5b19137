"""What both clients are built from: the base URL, the key (a header, never in a
URL), the timeout and the retry bounds."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

import httpx

from xsmoe_client.retry import RetryPolicy
from xsmoe_client.version import VERSION

H = TypeVar("H", httpx.Client, httpx.AsyncClient)


def http_options(base_url: str, api_key: str | None, timeout: float) -> dict[str, Any]:
    if api_key is not None and (not api_key or api_key != api_key.strip()):
        raise ValueError("api_key: blank or with whitespace at an end; the server refuses it")
    headers = {"User-Agent": f"xsmoe-client/{VERSION}"}
    if api_key is not None:
        headers["X-API-Key"] = api_key
    # Redirects are not followed: the key header must not travel to another host.
    return {"base_url": base_url, "headers": headers, "timeout": timeout}


class Connection(ABC, Generic[H]):
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 3,
        max_wait: float = 30.0,
        **httpx_options: Any,
    ) -> None:
        """`max_attempts` sends at most per call and `max_wait` seconds of waiting in
        all between them; `httpx_options` go to the httpx client (transport, proxy...)."""
        self.retry = RetryPolicy(max_attempts, max_wait)
        self.http: H = self._open({**http_options(base_url, api_key, timeout), **httpx_options})

    @abstractmethod
    def _open(self, options: dict[str, Any]) -> H: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.http.base_url)!r})"
