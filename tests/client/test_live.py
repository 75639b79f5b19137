"""The client against a real server, sync and async: every test runs with both."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.client.conftest import open_client
from tests.deployment import WRITE_KEY
from tests.service.live import Live
from xsmoe_client import (
    ApiError,
    AsyncClient,
    Client,
    FeedbackAccepted,
    FeedbackEvent,
    ItemOut,
    RecommendationList,
)

HEX_ID = re.compile(r"[0-9a-f]{32}")


def png(size: int = 40, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_recommend_then_feedback_moves_the_user(xs: Client, uid: Callable[[str], str]) -> None:
    user = uid("u")
    first = xs.recommend(user_id=user, k=5)
    assert isinstance(first, RecommendationList)
    assert first.fallback == "popular" and len(first.items) == 5
    accepted = xs.feedback(user, "m3")
    assert isinstance(accepted, FeedbackAccepted) and accepted.accepted == 1
    assert HEX_ID.fullmatch(accepted.events[0].event_id)  # made by the client
    after = xs.recommend(user_id=user, k=39)
    assert after.fallback is None and len(after.items) == 39
    assert "m3" not in after.item_ids  # seen: excluded
    again = xs.user_recommendations(user, k=39, exclude_seen=False)
    assert "m3" in again.item_ids
    assert xs.recommend(item_ids=["m1", "m2"], k=3, exclude_item_ids=["m4"]).items


def test_feedback_batch_and_event_ids(xs: Client, uid: Callable[[str], str]) -> None:
    user = uid("u")
    mine = uid("e")
    done = xs.feedback_batch(
        [
            FeedbackEvent(user, "m1", "like", event_id=mine, ts=1_700_000_000.0),
            {"user_id": user, "item_id": "m2", "type": "view"},  # a mapping works too
        ]
    )
    assert done.accepted == 2 and done.duplicates == 0
    assert done.events[0].event_id == mine and HEX_ID.fullmatch(done.events[1].event_id)
    repeat = xs.feedback(user, "m1", "like", event_id=mine)
    assert repeat.accepted == 0 and repeat.duplicates == 1 and repeat.events[0].duplicate


def test_add_get_delete_an_item(xs: Client, uid: Callable[[str], str]) -> None:
    item_id = uid("new")
    added = xs.add_item(item_id, text="the love war story")
    assert isinstance(added, ItemOut)
    assert added.item_id == item_id and added.source == "runtime" and added.indexed
    assert xs.get_item(item_id).text == "the love war story"
    assert item_id in xs.recommend(item_ids=["m1"], k=200).item_ids
    assert xs.delete_item(item_id).item_id == item_id
    with pytest.raises(ApiError) as err:
        xs.get_item(item_id)
    assert err.value.status == 404 and err.value.error == "not_found"
    with pytest.raises(ApiError) as err:
        xs.add_item(item_id, text="toy story")  # ids are never reused
    assert err.value.status == 409


def test_image_upload_as_bytes_path_and_base64(
    xs: Client, uid: Callable[[str], str], tmp_path: Path
) -> None:
    photo = xs.upload_item(uid("photo"), png(seed=1))  # image only: text is masked
    assert photo.indexed and photo.warnings == [] and "image" in photo.modalities
    path = tmp_path / "poster.png"
    path.write_bytes(png(seed=2))
    poster = xs.upload_item(uid("poster"), path, text="space night", tags=["sci-fi"])
    assert poster.indexed and poster.warnings == []
    assert xs.get_item(poster.item_id).text == "space night"
    json_item = xs.add_item(uid("b64"), image=str(path))  # base64 in JSON
    assert json_item.indexed and json_item.warnings == []
    every = xs.recommend(item_ids=["m1"], k=200).item_ids
    assert {photo.item_id, poster.item_id, json_item.item_id} <= set(every)
    with pytest.raises(ApiError) as err:
        xs.upload_item(uid("junk"), b"GIF8 not an image")
    assert err.value.status == 422 and "decodable" in err.value.detail


def test_a_422_carries_the_fields_at_fault(xs: Client) -> None:
    with pytest.raises(ApiError) as err:
        xs.recommend(user_id="u", k=500)
    e = err.value
    assert e.status == 422 and e.error == "invalid_input"
    assert [f.field for f in e.fields] == ["body.k"] and "200" in e.fields[0].message
    with pytest.raises(ApiError) as err:
        xs.feedback("a user", "m1")  # a space is not allowed in an id
    fields = err.value.fields
    assert len(fields) == 1 and fields[0].field.endswith("user_id")
    assert "not allowed in an id" in fields[0].message


def test_ids_are_url_encoded_in_paths(xs: Client, uid: Callable[[str], str]) -> None:
    item_id = uid("a:b@c+d~e.f_g")  # every character the alphabet has beside letters
    xs.add_item(item_id, text="toy story")
    got = xs.get_item(item_id)
    assert got.item_id == item_id and got.indexed
    user = uid("x.y+z@mail:1")
    xs.feedback(user, item_id)
    assert xs.user_recommendations(user, k=3).fallback is None  # the history was found
    # What is not an id reaches the server as one path segment and is refused by name,
    # never taken as another path, a query or a fragment.
    for bad in ("a/b", "x?y=1", "x#y", "..", "a b"):
        with pytest.raises(ApiError) as err:
            xs.get_item(bad)
        assert err.value.status == 422, bad
        assert "not allowed in an id" in err.value.detail or "'..'" in err.value.detail, bad
    assert xs.delete_item(item_id).item_id == item_id


def test_model_info_health_and_readiness(xs: Client) -> None:
    info = xs.model_info()
    assert info.version == "v000001" and info.items_indexed >= 40
    assert set(info.experts) == {"text", "image"}
    assert xs.health().status == "alive"
    ready = xs.readiness()
    assert ready.ready and ready.version == info.version and ready.redis == "ok"


def test_the_key_is_a_header_and_a_wrong_one_is_refused(flavor: str, server: Live) -> None:
    with open_client(flavor, server.url) as anonymous:
        assert anonymous.recommend(k=2).items  # reads are open in dev mode
        with pytest.raises(ApiError) as err:
            anonymous.feedback("u", "m1")
        assert err.value.status == 401
    with open_client(flavor, server.url, api_key="wrong-key-0123456") as wrong:
        with pytest.raises(ApiError) as err:
            wrong.feedback("u", "m1")
        assert err.value.status == 403
    with pytest.raises(ValueError, match="api_key"):
        Client(server.url, api_key=f" {WRITE_KEY}")


def test_async_calls_run_concurrently_on_one_loop(server: Live) -> None:
    async def main() -> list[RecommendationList]:
        async with AsyncClient(server.url, api_key=WRITE_KEY) as xs:
            return await asyncio.gather(*(xs.recommend(item_ids=[f"m{i}"], k=3) for i in range(8)))

    answers = asyncio.run(main())
    assert len(answers) == 8 and all(len(a.items) == 3 for a in answers)
