"""GET and DELETE /v1/users/{id}: what is stored of a user, and its erasure, which
never removes an event a worker has already read, nor anybody else's."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from tests.deployment import WRITE_KEY, planted_events, worker_settings_for
from xsmoe.common import ledger
from xsmoe.service import user_store
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings
from xsmoe.workers.redis_client import connect
from xsmoe.workers.worker import Worker

W = {"X-API-Key": WRITE_KEY}
GROUP = "trainers"


def _feedback(client: TestClient, events: list[dict[str, str]]) -> None:
    r = client.post("/v1/feedback", json={"events": events}, headers=W)
    assert r.status_code == 202, r.text


def test_a_lookup_reads_a_bounded_part_of_a_long_untrained_stream(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read may be frequent: past its budget the count is a lower bound, and says so
    (an erasure reads on, up to its own, larger bound)."""
    monkeypatch.setattr(user_store, "READ_SCAN", user_store.SCAN_CHUNK)
    for _ in range(2):
        _feedback(client, [{"user_id": "long", "item_id": "m1"}] * 700)
    body = client.get("/v1/users/long").json()
    assert body["pending_events"] == user_store.SCAN_CHUNK and not body["pending_events_exact"]
    erased = client.delete("/v1/users/long", headers=W).json()["erased"]
    assert erased["pending_events"] == 1400


def test_a_user_shows_history_dislikes_and_pending_events(client: TestClient) -> None:
    r = client.get("/v1/users/nobody")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    _feedback(
        client,
        [
            {"user_id": "ann", "item_id": "m1"},
            {"user_id": "ann", "item_id": "m2", "type": "purchase"},
            {"user_id": "ann", "item_id": "m3", "type": "dislike"},
            {"user_id": "bob", "item_id": "m3"},
        ],
    )
    r = client.get("/v1/users/ann")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "user_id": "ann",
        "history": ["m1", "m2"],
        "disliked": ["m3"],
        "pending_events": 3,  # no worker has trained on any yet
        "pending_events_exact": True,
    }
    r = client.get("/v1/users/ann", params={"verbose": 1})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "query.verbose"
    r = client.get("/v1/users/ann%2Fx")
    assert r.status_code == 422


def test_erasure_keeps_what_a_worker_has_read_and_everyone_else(
    client: TestClient, redis_url: str
) -> None:
    keys = client.app.state.runtime.keys  # type: ignore[attr-defined]
    db = connect(redis_url, decode_responses=True)
    _feedback(client, [{"user_id": "eve", "item_id": f"m{i}"} for i in (1, 2)])
    stream = keys.stream(keys.shard("eve"))
    db.xgroup_create(stream, GROUP, id="0")
    read = db.xreadgroup(GROUP, "w1", {stream: ">"}, count=2)  # a worker's open window
    assert len(read[0][1]) == 2
    _feedback(
        client,
        [
            {"user_id": "eve", "item_id": "m3"},
            {"user_id": "sam", "item_id": "m3"},
            {"user_id": "eve", "item_id": "m4", "type": "dislike"},
        ],
    )
    db.rpush(keys.context("eve"), "m0")  # what the worker trained on before
    db.xadd(keys.dead_letter, {"user_id": "eve", "item_id": "ghost", "reason": "unknown"})
    db.xadd(keys.dead_letter, {"user_id": "sam", "item_id": "ghost", "reason": "unknown"})
    assert client.delete("/v1/users/eve").status_code == 401
    r = client.delete("/v1/users/eve", headers=W)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["erased"] == {
        "history": 3,
        "disliked": 1,
        "trained_context": 1,
        "pending_events": 2,
        "dead_letters": 1,
    }
    assert "2 events already read by the worker" in out["retained"]
    assert "weights" in out["retained"]
    left = [(f["user_id"], f["item_id"]) for _, f in db.xrange(stream)]
    assert [e for e in left if e[0] == "eve"] == [("eve", "m1"), ("eve", "m2")]
    sams = db.xrange(keys.stream(keys.shard("sam")))
    assert [f["item_id"] for _, f in sams if f["user_id"] == "sam"] == ["m3"]
    # The worker reads on: nothing of eve's is new to it; its window stays whole.
    fresh = db.xreadgroup(GROUP, "w1", {stream: ">"}, count=10)
    assert "eve" not in {f["user_id"] for _, f in (fresh[0][1] if fresh else [])}
    assert [f["user_id"] for _, f in db.xrange(keys.dead_letter)] == ["sam"]
    assert not db.exists(keys.history("eve"), keys.disliked("eve"), keys.context("eve"))
    assert db.lrange(keys.history("sam"), 0, -1) == ["m3"]
    # What is left of eve: the two events in the worker's window, until it acks them.
    assert client.get("/v1/users/eve").json()["pending_events"] == 2
    db.xack(stream, GROUP, *[sid for sid, _ in read[0][1]])
    ms, seq = read[0][1][-1][0].split("-")
    db.xtrim(stream, minid=f"{ms}-{int(seq) + 1}")  # the worker's trim after the window
    assert client.get("/v1/users/eve").status_code == 404
    assert client.delete("/v1/users/eve", headers=W).status_code == 404
    recs = client.get("/v1/users/eve/recommendations?k=3").json()
    assert recs["fallback"] == "popular"  # no history left to condition on


def test_a_real_worker_never_trains_on_erased_events(settings: ServiceSettings) -> None:
    """Events erased before the worker read them are not in its window; everyone
    else's are, each once."""
    gone = [{"event_id": f"gone-{i}", "user_id": "gone", "item_id": f"m{i}"} for i in range(10)]
    events = planted_events(n_users=24, length=10)
    with TestClient(create_app(settings)) as client:
        _feedback(client, gone)
        _feedback(client, events)
        erased = client.delete("/v1/users/gone", headers=W).json()["erased"]
        assert erased["pending_events"] == 10 and erased["history"] == 10
        worker = Worker(worker_settings_for(settings, window_events=240, epsilon=0.05))
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 120
            while ledger.finished(settings.snapshots) != 0:
                assert time.monotonic() < deadline, "the worker did not finish a window"
                time.sleep(0.1)
        finally:
            worker.stop.set()
            thread.join(timeout=30)
        record = ledger.records(settings.snapshots)[0]
        detail = ledger.detail(settings.snapshots, record)
        assert sorted(detail["event_ids"]) == sorted(e["event_id"] for e in events)
        assert record["events"] == 240
        # A repeat of an erased event is not accepted again (its id is remembered).
        again = client.post("/v1/feedback", json=gone[0], headers=W).json()
        assert again["duplicates"] == 1
