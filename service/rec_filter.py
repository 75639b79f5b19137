"""Filters on recommendations: tags any / none, source. Applied to a ranking, which the
caller deepens until enough items pass (at most MAX_SCAN deep)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from xsmoe.service.deps import Runtime
from xsmoe.service.redis_client import REDIS_ERRORS
from xsmoe.service.schemas import RecommendFilter
from xsmoe.service.snapshot_items import items_of
from xsmoe.service.state import ServingState

log = logging.getLogger(__name__)

MAX_SCAN = 5_000  # ranked items a filtered request may look at (bounds its cost)


class TagLookup:
    """Tags per item for one request: set through the API (Redis) over the dataset's
    own (the snapshot's genres); each id is looked up once."""

    def __init__(self, runtime: Runtime, state: ServingState) -> None:
        self.runtime = runtime
        self.state = state
        self.found: dict[str, tuple[str, ...]] = {}
        self.warnings: list[str] = []
        self._redis = True

    async def tags(self, item_ids: Sequence[str]) -> Mapping[str, tuple[str, ...]]:
        todo = [i for i in item_ids if i not in self.found]
        if not todo:
            return self.found
        dataset = await asyncio.to_thread(items_of, self.state.manifest)
        metas = {}
        if self._redis:
            try:
                metas = await self.runtime.store.item_meta(todo)
            except REDIS_ERRORS as exc:
                log.warning("tag filter without Redis: %s", exc)
                self._redis = False
                self.warnings.append("Redis unreachable: filtered on the snapshot's own tags only")
        for item_id in todo:
            meta = metas.get(item_id)
            if meta is not None:
                self.found[item_id] = meta.tags
            else:
                known = dataset.get(item_id)
                self.found[item_id] = known.tags if known is not None else ()
        return self.found


def passes(
    rule: RecommendFilter,
    item_id: str,
    state: ServingState,
    tags: Mapping[str, tuple[str, ...]],
) -> bool:
    if rule.source is not None:
        in_snapshot = state.retriever.catalog.main_rows.get(item_id) is not None
        if (rule.source == "snapshot") != in_snapshot:
            return False
    own = set(tags.get(item_id, ()))
    if rule.tags_any is not None and not own.intersection(rule.tags_any):
        return False
    return not (rule.tags_none and own.intersection(rule.tags_none))
