"""A small Python client of the xsmoe API, over httpx.

from xsmoe.client import Client
with Client("http://127.0.0.1:8000", api_key="...") as xs:
    xs.feedback("196", "242")
    print(xs.recommend(user_id="196", k=5))
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx


class ApiError(Exception):
    """A 4xx/5xx answer: `status`, `error` (machine code) and `detail` (what to fix)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail


class Client:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

    def recommend(
        self,
        *,
        user_id: str | None = None,
        item_ids: Iterable[str] = (),
        k: int = 10,
        exclude_seen: bool = True,
        exclude_item_ids: Iterable[str] = (),
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"k": k, "exclude_seen": exclude_seen}
        if user_id is not None:
            body["user_id"] = user_id
        if item_ids:
            body["item_ids"] = list(item_ids)
        if exclude_item_ids:
            body["exclude_item_ids"] = list(exclude_item_ids)
        return self._call("POST", "/v1/recommendations", json=body)

    def feedback(
        self,
        user_id: str,
        item_id: str,
        type: str = "click",
        *,
        event_id: str | None = None,
        ts: float | None = None,
    ) -> dict[str, Any]:
        event = {"user_id": user_id, "item_id": item_id, "type": type}
        if event_id is not None:
            event["event_id"] = event_id
        if ts is not None:
            event["ts"] = ts  # type: ignore[assignment]
        return self._call("POST", "/v1/feedback", json=event)

    def feedback_batch(self, events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        return self._call("POST", "/v1/feedback", json={"events": list(events)})

    def add_item(
        self, item_id: str, *, text: str | None = None, image: bytes | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"item_id": item_id}
        if text is not None:
            body["text"] = text
        if image is not None:
            body["image_base64"] = base64.b64encode(image).decode()
        return self._call("POST", "/v1/items", json=body)

    def get_item(self, item_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/items/{item_id}")

    def delete_item(self, item_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/items/{item_id}")

    def model_info(self) -> dict[str, Any]:
        return self._call("GET", "/v1/model")

    def rollback(self, version: str) -> dict[str, Any]:
        return self._call("POST", "/v1/admin/rollback", json={"version": version})

    def ready(self) -> bool:
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.http.request(method, path, **kwargs)
        if response.is_error:
            try:
                body = response.json()
                error, detail = str(body.get("error")), str(body.get("detail"))
            except ValueError:
                error, detail = "http_error", response.text[:200]
            raise ApiError(response.status_code, error, detail)
        data: dict[str, Any] = response.json()
        return data

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
