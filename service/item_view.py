"""What the service knows of an item id, gathered from every place it can be: the
serving snapshot, this replica's run-time catalog, Redis (item metadata, the item
and deleted sets) and the snapshot's dataset (texts, tags); and its ItemOut."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from xsmoe.common.items import ItemMeta, StoredItem
from xsmoe.service.catalog import RuntimeCatalog
from xsmoe.service.deps import Runtime
from xsmoe.service.item_schemas import ItemOut, Source
from xsmoe.service.redis_client import REDIS_ERRORS
from xsmoe.service.snapshot_items import SnapshotItem, items_of
from xsmoe.service.state import ServingState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Known:
    item_id: str
    source: Source
    exists: bool
    deleted: bool
    meta: ItemMeta | None  # kept in Redis for every item written through the API
    stored: StoredItem | None  # run-time features, while no snapshot carries them
    snapshot: SnapshotItem | None  # from the snapshot's dataset

    @property
    def text(self) -> str | None:
        if self.meta is not None and self.meta.text:
            return self.meta.text
        if self.stored is not None and self.stored.meta.get("text"):
            return str(self.stored.meta["text"])
        return self.snapshot.text if self.snapshot is not None else None

    @property
    def tags(self) -> tuple[str, ...]:
        if self.meta is not None:
            return self.meta.tags
        return self.snapshot.tags if self.snapshot is not None else ()


async def known_items(
    runtime: Runtime, state: ServingState, item_ids: Sequence[str], *, redis: bool = True
) -> dict[str, Known]:
    """Everything known of each id. `redis=False`: this replica's knowledge only (for a
    read while Redis is down)."""
    ids = list(dict.fromkeys(item_ids))
    catalog, mirror = state.retriever.catalog, runtime.serving.catalog
    texts = await asyncio.to_thread(items_of, state.manifest)
    metas: dict[str, ItemMeta] = {}
    deleted = {i for i in ids if i in mirror.deleted or catalog.is_deleted(i)}
    stored = {i: mirror.items[i] for i in ids if i in mirror.items}
    if redis:
        store = runtime.store
        metas = await store.item_meta(ids)
        deleted |= await store.deleted_among([i for i in ids if i not in deleted])
        unseen = [i for i in ids if i not in catalog and i not in stored and i not in deleted]
        if unseen:  # added through another replica a moment ago, maybe
            flags = await store.redis.smismember(runtime.keys.items, unseen)
            for item_id, flag in zip(unseen, flags, strict=True):
                item = await store.get_item(item_id) if flag else None
                if item is not None:
                    stored[item_id] = item
    out = {}
    for i in ids:
        in_snapshot = catalog.main_rows.get(i) is not None
        out[i] = Known(
            item_id=i,
            source="snapshot" if in_snapshot else "runtime",
            exists=i in catalog or i in stored or i in metas or i in deleted,
            deleted=i in deleted,
            meta=metas.get(i),
            stored=stored.get(i),
            snapshot=texts.get(i) if in_snapshot else None,
        )
    return out


async def known_for_read(
    runtime: Runtime, state: ServingState, item_ids: Sequence[str]
) -> tuple[dict[str, Known], list[str]]:
    """`known_items` for a read: with Redis down, this replica's knowledge and a warning."""
    try:
        return await known_items(runtime, state, item_ids), []
    except REDIS_ERRORS as exc:
        log.warning("item lookup without Redis: %s", exc)
        found = await known_items(runtime, state, item_ids, redis=False)
        return found, ["Redis unreachable: tags, texts and times may be incomplete"]


def item_out(state: ServingState, known: Known, mirror: RuntimeCatalog) -> ItemOut:
    catalog = state.retriever.catalog
    item = known.stored or mirror.items.get(known.item_id)
    created = known.meta.created_at if known.meta else None
    if created is None and item is not None:
        created = item.meta.get("created_at")
    return ItemOut(
        item_id=known.item_id,
        source=known.source,
        indexed=known.item_id in catalog
        and not catalog.is_deleted(known.item_id)
        and not known.deleted,
        modalities=sorted(item.features) if item else sorted(state.retriever.model.config.shapes),
        text=known.text,
        tags=list(known.tags),
        created_at=created,
        updated_at=known.meta.updated_at if known.meta else None,
        model_version=state.version,
    )
