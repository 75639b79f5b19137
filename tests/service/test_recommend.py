from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from tests.deployment import ITEM_IDS, WRITE_KEY
from xsmoe.workers.redis_client import connect

W = {"X-API-Key": WRITE_KEY}


def test_session_items_give_k_unseen_items_from_the_catalog(client: TestClient) -> None:
    r = client.post("/v1/recommendations", json={"item_ids": ["m1", "m2"], "k": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [x["item_id"] for x in body["items"]]
    assert len(ids) == 7 == len(set(ids))
    assert set(ids) <= set(ITEM_IDS) - {"m1", "m2"}
    scores = [x["score"] for x in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert body["model_version"] == "v000001" and body["fallback"] is None
    assert body["warnings"] == []


def test_no_history_falls_back_to_popular_items(client: TestClient) -> None:
    body = client.post("/v1/recommendations", json={"user_id": "nobody", "k": 3}).json()
    assert body["fallback"] == "popular"
    # The snapshot's popularity order (tests.deployment: the last five ids reversed).
    assert [x["item_id"] for x in body["items"]] == ["m39", "m38", "m37"]


def test_unknown_history_ids_are_ignored_and_listed(client: TestClient) -> None:
    body = client.post("/v1/recommendations", json={"item_ids": ["ghost", "m3"], "k": 2}).json()
    assert len(body["items"]) == 2 and body["fallback"] is None
    assert body["warnings"] == ["1 unknown item ids ignored: ghost"]


def test_feedback_is_reflected_by_the_very_next_recommendation(client: TestClient) -> None:
    before = client.get("/v1/users/u1/recommendations", params={"k": 39}).json()
    assert before["fallback"] == "popular"
    top = before["items"][0]["item_id"]
    r = client.post("/v1/feedback", json={"user_id": "u1", "item_id": top}, headers=W)
    assert r.status_code == 202, r.text
    after = client.get("/v1/users/u1/recommendations", params={"k": 39}).json()
    ids = [x["item_id"] for x in after["items"]]
    assert after["fallback"] is None  # now conditioned on the clicked item
    assert top not in ids and len(ids) == 39
    # It equals a session query with that one item: the history is what was clicked.
    same = client.post("/v1/recommendations", json={"item_ids": [top], "k": 39}).json()
    assert same["items"] == after["items"]
    seen_too = client.get("/v1/users/u1/recommendations?k=40&exclude_seen=false").json()
    assert top in {x["item_id"] for x in seen_too["items"]}


def test_dislike_removes_an_item_without_extending_the_history(client: TestClient) -> None:
    client.post("/v1/feedback", json={"user_id": "u2", "item_id": "m5"}, headers=W)
    first = client.get("/v1/users/u2/recommendations?k=3").json()["items"]
    victim = first[0]["item_id"]
    r = client.post(
        "/v1/feedback", json={"user_id": "u2", "item_id": victim, "type": "dislike"}, headers=W
    )
    assert r.status_code == 202
    again = client.get("/v1/users/u2/recommendations?k=3").json()["items"]
    assert victim not in {x["item_id"] for x in again}
    assert again[0] == first[1]  # same user vector: only the disliked item is gone


def test_repeated_event_id_is_accepted_once(client: TestClient, redis_url: str) -> None:

    event = {"event_id": "dup-1", "user_id": "u3", "item_id": "m7", "type": "like"}
    one = client.post("/v1/feedback", json=event, headers=W).json()
    two = client.post("/v1/feedback", json={"events": [event, event]}, headers=W).json()
    assert one["accepted"] == 1 and one["duplicates"] == 0
    assert two["accepted"] == 0 and two["duplicates"] == 2
    assert {e["stream_id"] for e in two["events"]} == {one["events"][0]["stream_id"]}
    prefix = client.app.state.runtime.keys  # type: ignore[attr-defined]
    r = connect(redis_url)
    assert r.lrange(prefix.history("u3"), 0, -1) == [b"m7"]
    entries = r.xrange(prefix.stream(prefix.shard("u3")))
    assert [e[1][b"event_id"] for e in entries] == [b"dup-1"]


def test_batch_feedback_appends_every_event_in_order(client: TestClient, redis_url: str) -> None:

    events = [{"user_id": "u4", "item_id": f"m{i}", "ts": 1000.0 + i} for i in range(30)]
    r = client.post("/v1/feedback", json={"events": events}, headers=W)
    assert r.status_code == 202 and r.json()["accepted"] == 30
    keys = client.app.state.runtime.keys  # type: ignore[attr-defined]
    db = connect(redis_url, decode_responses=True)
    stream = db.xrange(keys.stream(keys.shard("u4")))
    assert [e[1]["item_id"] for e in stream] == [f"m{i}" for i in range(30)]
    assert all(len(e[1]["event_id"]) == 32 for e in stream)  # server-assigned ids
    assert float(stream[3][1]["ts"]) == 1003.0
    assert db.lrange(keys.history("u4"), 0, -1) == [f"m{i}" for i in range(30)]
    body = client.get("/v1/users/u4/recommendations?k=10").json()
    assert len(body["items"]) == 10 and not {x["item_id"] for x in body["items"]} & {
        f"m{i}" for i in range(30)
    }
    # Popularity counts only positive feedback.
    assert np.isclose(float(db.zscore(keys.popular_of(keys.shard("u4")), "m3") or 0), 1.0)


def test_offset_pages_through_one_ranking(client: TestClient) -> None:
    body = {"item_ids": ["m1", "m2"], "k": 9}
    whole = client.post("/v1/recommendations", json=body).json()["items"]
    page = client.post("/v1/recommendations", json={**body, "k": 3, "offset": 4}).json()
    assert page["items"] == whole[4:7]
    r = client.post("/v1/recommendations", json={**body, "k": 200, "offset": 801})
    assert r.status_code == 422 and "k + offset" in r.json()["detail"]
    client.post("/v1/feedback", json={"user_id": "pager", "item_id": "m5"}, headers=W)
    full = client.get("/v1/users/pager/recommendations?k=6").json()["items"]
    tail = client.get("/v1/users/pager/recommendations?k=2&offset=4").json()["items"]
    assert tail == full[4:6]
    r = client.get("/v1/users/pager/recommendations?k=200&offset=900")
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "query.offset"


def test_filters_keep_only_matching_items(client: TestClient) -> None:
    for i in range(10):
        tags = ["blue"] if i % 2 else ["red", "big"]
        assert client.put(f"/v1/items/m{i}", json={"tags": tags}, headers=W).status_code == 200
    for item_id in ("r-a", "r-b"):
        client.put(f"/v1/items/{item_id}", json={"text": "war story", "tags": ["blue"]}, headers=W)
    base = {"item_ids": ["m20"], "k": 20}

    def ids(rule: dict[str, object], **extra: object) -> list[str]:
        r = client.post("/v1/recommendations", json={**base, **extra, "filter": rule})
        assert r.status_code == 200, r.text
        return [x["item_id"] for x in r.json()["items"]]

    blue = ids({"tags_any": ["blue"]})
    assert set(blue) == {"m1", "m3", "m5", "m7", "m9", "r-a", "r-b"}
    assert set(ids({"tags_any": ["blue", "big"]})) == set(blue) | {f"m{i}" for i in range(0, 10, 2)}
    assert set(ids({"tags_any": ["blue"], "tags_none": ["big"], "source": "snapshot"})) == {
        "m1", "m3", "m5", "m7", "m9",
    }  # fmt: skip
    assert set(ids({"source": "runtime"})) == {"r-a", "r-b"}
    assert not {f"m{i}" for i in range(10)} & set(ids({"tags_none": ["blue", "red"]}))
    # Filtered order is the unfiltered ranking's order, and offset pages it.
    ranking = [i for i in ids({}, k=41) if i in set(blue)]
    assert blue == ranking and ids({"tags_any": ["blue"]}, k=2, offset=3) == ranking[3:5]
    r = client.post("/v1/recommendations", json={**base, "filter": {"tags": ["x"]}})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "body.filter.tags"
    # The popular fallback is filtered too.
    r = client.post("/v1/recommendations", json={"k": 5, "filter": {"tags_any": ["blue"]}})
    assert r.json()["fallback"] == "popular"
    assert {x["item_id"] for x in r.json()["items"]} <= set(blue)


def test_unknown_query_parameters_are_refused_by_name(client: TestClient) -> None:
    r = client.get("/v1/users/u1/recommendations", params={"k": 3, "kk": 4})
    assert r.status_code == 422 and r.json()["error"] == "invalid_input"
    assert r.json()["fields"] == [
        {"field": "query.kk", "message": r.json()["detail"]},
    ]
    assert "allowed: exclude_seen, k, model_version, offset" in r.json()["detail"]
    assert client.get("/v1/model?debug=1").status_code == 422
    assert client.get("/v1/users/u1/recommendations?k=3&exclude_seen=false").status_code == 200
