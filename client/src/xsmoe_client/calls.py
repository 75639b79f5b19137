"""Every route of the API as a function that builds its Call. These signatures are
the clients' methods: `Client.recommend(...)` and `await AsyncClient.recommend(...)`
both send `recommend(...)`'s Call.

Optional arguments left at their defaults are not sent, so the server's own
defaults apply and an older server is not sent a field it does not know.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from xsmoe_client.call import Call, segment
from xsmoe_client.inputs import (
    EventType,
    FeedbackEvent,
    ImageInput,
    ItemInput,
    RecommendFilter,
    event_json,
    image_file,
    item_content,
    item_json,
)
from xsmoe_client.models import (
    BatchResult,
    FeedbackAccepted,
    Health,
    ItemOut,
    ItemPage,
    ModelInfo,
    ModelList,
    ModelVersion,
    Readiness,
    RecommendationList,
    RollbackDone,
    UserErased,
    UserOut,
)


def recommend(
    *,
    user_id: str | None = None,
    item_ids: Sequence[str] = (),
    k: int = 10,
    offset: int = 0,
    exclude_seen: bool = True,
    exclude_item_ids: Sequence[str] = (),
    filter: RecommendFilter | None = None,
    model_version: str | None = None,
) -> Call[RecommendationList]:
    """Top `k` items (after `offset`) for a stored user, recent `item_ids` (newest
    last), or both; `model_version` asks one version explicitly."""
    body: dict[str, Any] = {"k": k}
    if user_id is not None:
        body["user_id"] = user_id
    if item_ids:
        body["item_ids"] = list(item_ids)
    if offset:
        body["offset"] = offset
    if not exclude_seen:
        body["exclude_seen"] = False
    if exclude_item_ids:
        body["exclude_item_ids"] = list(exclude_item_ids)
    if filter is not None:
        body["filter"] = filter.to_json()
    if model_version is not None:
        body["model_version"] = model_version
    return Call("POST", "/v1/recommendations", RecommendationList, True, json=body)


def user_recommendations(
    user_id: str,
    *,
    k: int = 10,
    offset: int = 0,
    exclude_seen: bool = True,
    model_version: str | None = None,
) -> Call[RecommendationList]:
    """Top `k` items for a stored user (GET)."""
    params: dict[str, str | int | bool] = {"k": k}
    if offset:
        params["offset"] = offset
    if not exclude_seen:
        params["exclude_seen"] = "false"
    if model_version is not None:
        params["model_version"] = model_version
    path = f"/v1/users/{segment(user_id)}/recommendations"
    return Call("GET", path, RecommendationList, True, params=params)


def feedback(
    user_id: str,
    item_id: str,
    type: EventType = "click",
    *,
    event_id: str | None = None,
    ts: float | datetime | None = None,
) -> Call[FeedbackAccepted]:
    """One event. Without `event_id` the client makes one, so a retry counts once."""
    event = FeedbackEvent(user_id, item_id, type, event_id, ts)
    return Call("POST", "/v1/feedback", FeedbackAccepted, True, json=event.to_json())


def feedback_batch(
    events: Iterable[FeedbackEvent | Mapping[str, Any]],
) -> Call[FeedbackAccepted]:
    """Up to 1,000 events at once; each without an `event_id` gets one."""
    body = {"events": [event_json(e) for e in events]}
    return Call("POST", "/v1/feedback", FeedbackAccepted, True, json=body)


def add_item(
    item_id: str,
    *,
    text: str | None = None,
    image: ImageInput | None = None,
    tags: Sequence[str] | None = None,
) -> Call[ItemOut]:
    """Create an item (409 if the id exists or existed): never retried once sent."""
    body = {"item_id": item_id, **item_content(text, image, tags)}
    return Call("POST", "/v1/items", ItemOut, False, json=body)


def upload_item(
    item_id: str,
    image: ImageInput,
    *,
    text: str | None = None,
    tags: Sequence[str] | None = None,
    filename: str | None = None,
) -> Call[ItemOut]:
    """Create an item with the image as a multipart file (bytes or a file's path)."""
    data: dict[str, str | list[str]] = {"item_id": item_id}
    if text is not None:
        data["text"] = text
    if tags is not None:
        data["tags"] = list(tags)
    files = {"image": image_file(image, filename)}
    return Call("POST", "/v1/items/upload", ItemOut, False, data=data, files=files)


def put_item(
    item_id: str,
    *,
    text: str | None = None,
    image: ImageInput | None = None,
    tags: Sequence[str] | None = None,
) -> Call[ItemOut]:
    """Create or replace an item (idempotent): `change` says created/updated/unchanged."""
    body = item_content(text, image, tags)
    return Call("PUT", f"/v1/items/{segment(item_id)}", ItemOut, True, json=body)


def put_items(items: Iterable[ItemInput | Mapping[str, Any]]) -> Call[BatchResult]:
    """Upsert up to 1,000 items; each result says created/updated/unchanged/failed."""
    body = {"items": [item_json(i) for i in items]}
    return Call("POST", "/v1/items:batch", BatchResult, True, json=body)


def get_item(item_id: str) -> Call[ItemOut]:
    return Call("GET", f"/v1/items/{segment(item_id)}", ItemOut, True)


def delete_item(item_id: str) -> Call[ItemOut]:
    """Never recommended again (every replica within a second)."""
    return Call("DELETE", f"/v1/items/{segment(item_id)}", ItemOut, True)


def list_items(
    *, limit: int = 100, cursor: str | None = None, source: str | None = None
) -> Call[ItemPage]:
    """One page of the catalog; pass `next_cursor` back for the next one."""
    params: dict[str, str | int | bool] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    if source is not None:
        params["source"] = source
    return Call("GET", "/v1/items", ItemPage, True, params=params)


def iter_items(*, page_size: int = 100, source: str | None = None) -> Call[ItemPage]:
    """Every item, page after page (the first page's Call; see next_items_page)."""
    return list_items(limit=page_size, source=source)


def next_items_page(call: Call[ItemPage], page: ItemPage) -> Call[ItemPage] | None:
    return None if page.next_cursor is None else call.with_params(cursor=page.next_cursor)


def get_user(user_id: str) -> Call[UserOut]:
    """What is stored about a user: history, dislikes, events not trained on yet."""
    return Call("GET", f"/v1/users/{segment(user_id)}", UserOut, True)


def delete_user(user_id: str) -> Call[UserErased]:
    """Erase what is stored about a user; `retained` says what cannot be erased."""
    return Call("DELETE", f"/v1/users/{segment(user_id)}", UserErased, True)


def model_info() -> Call[ModelInfo]:
    """The serving snapshot: version, experts per stage, metrics, items indexed."""
    return Call("GET", "/v1/model", ModelInfo, True)


def list_models() -> Call[ModelList]:
    """Every stored model version, newest first, and which one serves."""
    return Call("GET", "/v1/models", ModelList, True)


def get_model(version: str) -> Call[ModelVersion]:
    return Call("GET", f"/v1/models/{segment(version)}", ModelVersion, True)


def rollback(version: str) -> Call[RollbackDone]:
    """Serve an earlier snapshot (admin key); repeating it changes nothing more."""
    return Call("POST", "/v1/admin/rollback", RollbackDone, True, json={"version": version})


def health() -> Call[Health]:
    return Call("GET", "/healthz", Health, True)


def readiness() -> Call[Readiness]:
    """Ready or not (a 503 here is an answer, not an error, and is not retried)."""
    return Call("GET", "/readyz", Readiness, True, answers=frozenset({503}))
