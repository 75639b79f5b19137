"""Brings items added at run time (features kept in Redis) into the worker's feature
store, so every later snapshot includes them; once a promoted snapshot carries
them, their copy in Redis is dropped (replicas drop theirs when they swap)."""

from __future__ import annotations

import logging
from typing import Any

from xsmoe.common.items import StoredItem, stack_features
from xsmoe.common.keys import Keys
from xsmoe.model.features import FeatureStore, ModalityRows
from xsmoe.workers.redis_client import SyncRedis

log = logging.getLogger(__name__)


def runtime_item_ids(client: SyncRedis, keys: Keys) -> set[str]:
    """The ids of the items added at run time that Redis still holds."""
    members: Any = client.smembers(keys.items)
    return {m.decode() if isinstance(m, bytes) else m for m in members}


def sync_runtime_items(client: SyncRedis, keys: Keys, store: FeatureStore) -> int:
    """Append the run-time items the store lacks; returns how many were added."""
    missing = sorted(i for i in runtime_item_ids(client, keys) if i not in store)
    if not missing:
        return 0
    with client.pipeline(transaction=False) as pipe:
        for item_id in missing:
            pipe.hgetall(keys.item(item_id))
        hashes: list[Any] = pipe.execute()
    added = []
    for item_id, fields in zip(missing, hashes, strict=True):
        try:
            added.append(StoredItem.from_hash(item_id, fields))
        except ValueError as exc:
            log.error("run-time item skipped: %s", exc)
    shapes = {m: (spec.n_layers, spec.hidden) for m, spec in store.specs.items()}
    rows = {m: ModalityRows(f, p) for m, (f, p) in stack_features(added, shapes).items()}
    if added:
        store.append([i.item_id for i in added], rows)
        log.info("feature store: %d run-time items added (now %d)", len(added), len(store))
    return len(added)


def absorb_runtime_items(client: SyncRedis, keys: Keys, item_ids: list[str]) -> int:
    """Forget run-time items the current snapshot now carries (idempotent)."""
    if not item_ids:
        return 0
    with client.pipeline(transaction=False) as pipe:
        for lo in range(0, len(item_ids), 1000):
            chunk = item_ids[lo : lo + 1000]
            pipe.srem(keys.items, *chunk)
            pipe.delete(*(keys.item(i) for i in chunk))
        pipe.execute()
    log.info("%d run-time items now live in the snapshot: dropped from Redis", len(item_ids))
    return len(item_ids)
