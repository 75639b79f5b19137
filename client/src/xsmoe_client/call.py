"""One API call, described without sending it: what to send, whether it is safe to
send twice, and what the answer parses into. Both clients send these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from xsmoe_client.errors import ApiError

T = TypeVar("T", bound=BaseModel)
Params = Mapping[str, str | int | bool]


def segment(value: str) -> str:
    """`value` as one URL path segment: every reserved character percent-encoded,
    and `.` / `..` too (clients and proxies would resolve them away)."""
    if value in (".", ".."):
        return "%2E" * len(value)
    return quote(value, safe="")


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    model: type[T]
    idempotent: bool  # sending it twice has the effect of sending it once
    params: Params | None = None
    json: Any = None
    data: Mapping[str, str | list[str]] | None = None  # multipart form fields
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    answers: frozenset[int] = frozenset()  # error statuses whose body is still the result

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        return http.build_request(
            self.method,
            self.path,
            params=self.params,
            json=self.json,
            data=self.data,
            files=self.files,
        )

    def result(self, outcome: httpx.Response | httpx.TransportError) -> T:
        """The parsed body; ApiError for an error status; the transport's error raised."""
        if isinstance(outcome, httpx.TransportError):
            raise outcome
        response = outcome
        if response.is_error and response.status_code not in self.answers:
            raise ApiError.from_response(response)
        return self.model.model_validate_json(response.content)

    def with_params(self, **params: str | int | bool) -> Call[T]:
        return replace(self, params={**(self.params or {}), **params})
