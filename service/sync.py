"""Keeps this replica's run-time catalog and popularity in step with Redis.

An item added or deleted through any replica is logged in a Redis stream; every
replica tails that stream, so each serves the change within one read cycle.
"""

from __future__ import annotations

import asyncio
import logging
import time

from xsmoe.service.redis_client import REDIS_ERRORS
from xsmoe.service.serving import Serving
from xsmoe.service.store import Store
from xsmoe.service.watcher import raise_if_cancelled

log = logging.getLogger(__name__)

POPULAR_EVERY_S = 1.0
POPULAR_SIZE = 1000


class CatalogSync:
    def __init__(self, serving: Serving, store: Store, block_ms: int) -> None:
        self.serving = serving
        self.store = store
        self.block_ms = block_ms
        self.synced = asyncio.Event()  # set once the whole catalog has been read

    async def run_forever(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._follow()
            except REDIS_ERRORS as exc:
                raise_if_cancelled()
                log.warning("catalog sync lost Redis (%s); retrying in %.1f s", exc, backoff)
            except Exception:  # a client bug must not end the sync for good
                raise_if_cancelled()
                log.exception("catalog sync failed; retrying in %.1f s", backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _follow(self) -> None:
        catalog = self.serving.catalog
        position, items, deleted = await self.store.catalog()
        for item in items:
            catalog.add(item)
        for item_id in deleted:
            catalog.delete(item_id)
        await self.serving.catalog_changed()
        self.synced.set()
        log.info("catalog synced: %d run-time items, %d deleted", len(items), len(deleted))
        next_popular = 0.0
        while True:
            if time.monotonic() >= next_popular:
                self.serving.live_popular = tuple(await self.store.popular(POPULAR_SIZE))
                next_popular = time.monotonic() + POPULAR_EVERY_S
            changes = await self.store.catalog_changes(position, self.block_ms)
            for change in changes:
                position = change.log_id
                if change.op == "delete":
                    catalog.delete(change.item_id)
                elif change.op == "add" and change.item_id not in catalog.items:
                    try:
                        fetched = await self.store.get_item(change.item_id)
                    except ValueError as exc:
                        log.error("skipping item %s: %s", change.item_id, exc)
                        continue
                    if fetched is not None:
                        catalog.add(fetched)
            if changes:
                await self.serving.catalog_changed()
