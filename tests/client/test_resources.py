"""The catalog, user and model routes (upsert, listing, batch, users, models,
paged and filtered recommendations) through the client, against the real server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.client.test_live import png
from xsmoe_client import ApiError, Client, ItemInput, RecommendFilter

Needs = Callable[[str, str], None]


def test_put_item_creates_then_is_unchanged_then_updates_tags(
    xs: Client, uid: Callable[[str], str], needs: Needs
) -> None:
    needs("PUT", "/v1/items/{}")
    item_id = uid("put:1@x")  # encoded in the path
    created = xs.put_item(item_id, text="space night", image=png(seed=3), tags=["sci-fi"])
    assert created.change == "created" and created.indexed and created.tags == ["sci-fi"]
    same = xs.put_item(item_id, text="space night", image=png(seed=3), tags=["sci-fi"])
    assert same.change == "unchanged"  # a retry of the same PUT is safe
    retagged = xs.put_item(item_id, text="space night", image=png(seed=3), tags=["a", "b"])
    assert retagged.change == "updated" and sorted(retagged.tags) == ["a", "b"]
    assert xs.get_item(item_id).updated_at is not None
    with pytest.raises(ApiError) as err:
        xs.put_item(item_id, text="other content")  # trained content is never replaced
    assert err.value.status == 409


def test_items_are_listed_page_by_page(xs: Client, needs: Needs) -> None:
    needs("GET", "/v1/items")
    first = xs.list_items(limit=7, source="snapshot")
    assert len(first.items) == 7 and first.next_cursor is not None
    assert all(i.source == "snapshot" for i in first.items)
    second = xs.list_items(limit=7, cursor=first.next_cursor, source="snapshot")
    assert not {i.item_id for i in first.items} & {i.item_id for i in second.items}
    every = list(xs.iter_items(page_size=7, source="snapshot"))  # 6 pages of 40 items
    ids = [i.item_id for i in every]
    assert len(ids) == len(set(ids)) == 40 and {f"m{i}" for i in range(40)} == set(ids)
    with pytest.raises(ApiError) as err:
        xs.list_items(limit=0)
    assert err.value.status == 422 and err.value.fields


def test_a_batch_reports_each_item(xs: Client, uid: Callable[[str], str], needs: Needs) -> None:
    needs("POST", "/v1/items:batch")
    a, b = uid("batch-a"), uid("batch-b")
    items: list[Any] = [
        ItemInput(a, text="toy story", tags=["kids"]),
        {"item_id": b, "text": "war movie"},
        ItemInput("not an id", text="toy"),
    ]
    done = xs.put_items(items)
    assert (done.created, done.updated, done.unchanged, done.failed) == (2, 0, 0, 1)
    assert [r.status for r in done.results] == ["created", "created", "failed"]
    failed = done.results[2].error
    assert failed is not None and failed.error == "invalid_input"
    again = xs.put_items(items[:2])  # retrying a batch is safe
    assert again.unchanged == 2 and again.created == 0


def test_a_user_is_read_and_erased(xs: Client, uid: Callable[[str], str], needs: Needs) -> None:
    needs("GET", "/v1/users/{}")
    needs("DELETE", "/v1/users/{}")
    user = uid("erase+me@example.org")
    with pytest.raises(ApiError) as err:
        xs.get_user(user)
    assert err.value.status == 404
    xs.feedback(user, "m1")
    xs.feedback(user, "m2")
    xs.feedback(user, "m5", "dislike")
    stored = xs.get_user(user)
    assert stored.history == ["m1", "m2"] and stored.disliked == ["m5"]
    assert stored.pending_events >= 1
    erased = xs.delete_user(user)
    assert erased.user_id == user and sum(erased.erased.values()) >= 1 and erased.retained
    with pytest.raises(ApiError):
        xs.get_user(user)


def test_models_are_listed_and_one_is_asked_explicitly(xs: Client, needs: Needs) -> None:
    needs("GET", "/v1/models")
    needs("GET", "/v1/models/{}")
    models = xs.list_models()
    assert models.serving == "v000001"
    assert [v.version for v in models.versions if v.serving] == ["v000001"]
    one = xs.get_model("v000001")
    assert one.version == "v000001" and one.serving
    asked = xs.recommend(item_ids=["m1"], k=3, model_version="v000001")
    assert asked.model_version == "v000001"
    for unknown in (lambda: xs.get_model("v999999"), lambda: xs.recommend(model_version="v999999")):
        with pytest.raises(ApiError) as err:
            unknown()
        assert err.value.status == 404


def test_recommendations_page_and_filter(
    xs: Client, uid: Callable[[str], str], openapi: dict[str, Any]
) -> None:
    props = openapi["components"]["schemas"]["RecommendRequest"]["properties"]
    assert "offset" in props and "filter" in props
    top = xs.recommend(item_ids=["m1"], k=10).item_ids
    page2 = xs.recommend(item_ids=["m1"], k=5, offset=5).item_ids
    assert page2 == top[5:10]
    user = uid("pager")
    xs.feedback(user, "m1")
    assert (
        xs.user_recommendations(user, k=5, offset=5).item_ids
        == (xs.user_recommendations(user, k=10).item_ids[5:])
    )
    runtime_only = xs.recommend(item_ids=["m1"], k=200, filter=RecommendFilter(source="runtime"))
    assert all(not i.startswith("m") or "-" in i for i in runtime_only.item_ids)
    tagged, tag = uid("tagged"), uid("only-here")
    xs.put_item(tagged, text="love story", tags=[tag])
    only = xs.recommend(item_ids=["m1"], k=200, filter=RecommendFilter(tags_any=[tag]))
    assert only.item_ids == [tagged]
    none = xs.recommend(item_ids=["m1"], k=200, filter=RecommendFilter(tags_none=[tag]))
    assert tagged not in none.item_ids and len(none.items) >= 39
