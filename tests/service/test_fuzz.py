"""Property test: no request body, path or query the fuzzer makes gets a 5xx."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.deployment import ADMIN_KEY

KEYS = {"X-API-Key": ADMIN_KEY}  # past auth, so the fuzzer reaches the handlers
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["m1", "m2", "", "click", "dislike", "v000001", "\x00", "é" * 200])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


def post(client: TestClient, path: str, body: Any) -> int:
    """POST a body as JSON text; NaN/Infinity go out as Python writes them (invalid JSON)."""
    headers = {**KEYS, "content-type": "application/json"}
    return client.post(path, content=json.dumps(body), headers=headers).status_code


def near(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies with the right field names and sometimes-right, sometimes-wild values."""
    return st.fixed_dictionaries(
        {}, optional={name: strat | json_values for name, strat in fields.items()}
    )


ids = st.sampled_from(["m1", "m5", "ghost"]) | st.text(max_size=140)
recommend_bodies = near(
    {
        "user_id": ids,
        "item_ids": st.lists(ids, max_size=5),
        "k": st.integers(-5, 300),
        "exclude_seen": st.booleans(),
        "exclude_item_ids": st.lists(ids, max_size=3),
    }
)
event = near(
    {
        "event_id": ids,
        "user_id": ids,
        "item_id": ids,
        "type": st.sampled_from(["click", "view", "purchase", "like", "dislike", "zap"]),
        "ts": st.floats(allow_nan=True) | st.integers(),
    }
)
feedback_bodies = event | near({"events": st.lists(event, max_size=4)})
item_bodies = near(
    {
        "item_id": ids,
        "text": st.text(max_size=50),
        "image_base64": st.sampled_from(["", "aGVsbG8=", "!!", "iVBORw0KGgo="]) | st.text(),
    }
)


@FUZZ
@given(body=recommend_bodies | json_values)
def test_recommendations(client: TestClient, body: Any) -> None:
    assert post(client, "/v1/recommendations", body) < 500


@FUZZ
@given(body=feedback_bodies | json_values)
def test_feedback(client: TestClient, body: Any) -> None:
    assert post(client, "/v1/feedback", body) < 500


@FUZZ
@given(body=item_bodies | json_values)
def test_items(client: TestClient, body: Any) -> None:
    assert post(client, "/v1/items", body) < 500


@FUZZ
@given(
    item_id=st.text(min_size=1, max_size=150),
    k=st.text(max_size=6) | st.integers(-10, 500).map(str),
    method=st.sampled_from(["GET", "DELETE"]),
)
def test_paths_and_queries(client: TestClient, item_id: str, k: str, method: str) -> None:
    quoted = quote(item_id, safe="")  # the server sees the decoded text, controls and all
    assert client.get(f"/v1/users/{quoted}/recommendations", params={"k": k}).status_code < 500
    r = client.request(method, f"/v1/items/{quoted}", headers=KEYS)
    assert r.status_code < 500


@FUZZ
@given(body=near({"version": st.sampled_from(["v000001", "v999999", "v1"]) | st.text()}))
def test_rollback(client: TestClient, body: Any) -> None:
    assert post(client, "/v1/admin/rollback", body) < 500


@FUZZ
@given(raw=st.binary(max_size=200))
def test_raw_bytes(client: TestClient, raw: bytes) -> None:
    for path in ("/v1/recommendations", "/v1/feedback", "/v1/items", "/v1/items/upload"):
        headers = {**KEYS, "content-type": "application/json"}
        assert client.post(path, content=raw, headers=headers).status_code < 500
