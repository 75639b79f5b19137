"""Run-time items: applied off the event loop, and their vectors kept across swaps
when the item tower is the same."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np

from tests.deployment import publish_snapshot
from xsmoe.common.items import StoredItem
from xsmoe.common.snapshot_store import open_store, serving_dir
from xsmoe.model.feature_build import CatalogEncoder
from xsmoe.model.snapshot import load_snapshot
from xsmoe.service.item_encoder import ItemEncoder
from xsmoe.service.metrics import Metrics
from xsmoe.service.serving import Serving
from xsmoe.service.settings import ServiceSettings
from xsmoe.service.state import ServingState, build_state, tower_digest

TEXTS = ["the space war movie", "a love story", "toy horror night", "the drama of war"]


def _items(settings: ServiceSettings, n: int, prefix: str = "new") -> list[StoredItem]:
    encoder = CatalogEncoder(
        settings.text.to_config(), settings.image.to_config(), cache_dir=settings.cache_dir
    )
    items = [(f"{prefix}{j}", TEXTS[j % len(TEXTS)] + f" {j}", None) for j in range(n)]
    return ItemEncoder(encoder, encoder.specs()).encode_many(items, ["text"])


def _copy(root: Path, source: str, version: str) -> str:
    """The same weights under a new version (a re-publication, or a rollback target)."""
    shutil.copytree(root / source, root / version)
    manifest_path = root / version / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.update(version=version, parent=source)
    manifest_path.write_text(json.dumps(manifest))
    return version


def _state(root: Path, version: str, items: list[StoredItem], **kw: object) -> ServingState:
    return build_state(
        load_snapshot(root / version),
        items,
        (),
        0,
        warmup_queries=0,
        **kw,  # type: ignore[arg-type]
    )


def test_a_swap_reuses_runtime_vectors_only_when_the_item_tower_is_the_same(
    settings: ServiceSettings,
) -> None:
    root = settings.snapshots
    items = _items(settings, 5)
    ids = [i.item_id for i in items]
    first = _state(root, "v000001", items)
    same = _copy(root, "v000001", "v000002")
    other = publish_snapshot(root, settings, seed=7)
    towers = {v: tower_digest(load_snapshot(root / v).model) for v in ("v000001", same, other)}
    assert towers["v000001"] == towers[same] == first.tower and towers[other] != first.tower

    # Vectors only a reuse can produce: the previous state's, replaced by markers.
    markers = np.eye(5, first.retriever.catalog.dim, dtype=np.float32)
    catalog = first.retriever.catalog
    bare = type(catalog).over(catalog.main_ids, catalog.main_vectors, catalog.main_index)
    marked = first.retriever.with_catalog(bare.with_items(ids, markers))
    previous = ServingState(marked, first.manifest, 0, first.loaded_at, (), first.tower)
    rows = [first.retriever.catalog.row_of(i) for i in ids]

    reused = _state(root, same, items, previous=previous).retriever.catalog
    assert np.array_equal(reused.vectors([reused.row_of(i) for i in ids]), markers)  # type: ignore[misc]

    fresh = _state(root, other, items, previous=previous).retriever.catalog
    alone = _state(root, other, items).retriever.catalog
    got = fresh.vectors([fresh.row_of(i) for i in ids])  # type: ignore[misc]
    assert np.allclose(got, alone.vectors([alone.row_of(i) for i in ids]), atol=1e-6)  # type: ignore[misc]
    assert not np.allclose(got, markers, atol=1e-3)
    assert not np.allclose(got, first.retriever.catalog.vectors(rows), atol=1e-3)  # type: ignore[arg-type]


def test_an_add_is_built_off_the_loop_while_requests_are_answered(
    settings: ServiceSettings,
) -> None:
    """Many items at once (a real item tower over them): while the new state is built,
    the loop keeps answering on the old state; then the new one serves them all."""
    items = _items(settings, 600, prefix="bulk")

    async def scenario() -> tuple[list[int], int]:
        store = open_store(settings)
        serving = Serving(store, serving_dir(store, settings), settings.serving, Metrics(), None)
        await serving.load("v000001")
        old = serving.current
        assert old is not None
        for item in items:
            serving.catalog.add(item)
        change = asyncio.create_task(serving.catalog_changed())
        answered: list[int] = []  # requests answered while the change was being built
        while not change.done():
            state = serving.current
            if serving._changing.locked():  # the change has started and is not assigned
                assert state is old
                answered.append(len(state.retriever.recommend(["m1", "m2"], k=5).items))
            await asyncio.sleep(0)
        await change
        new = serving.current
        assert new is not None and new.catalog_seq == serving.catalog.seq
        return answered, len(new.retriever.catalog)

    answered, size = asyncio.run(scenario())
    assert answered and all(n == 5 for n in answered)
    assert size == 40 + 600
