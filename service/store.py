"""Shared serving state in Redis: feedback stream, user histories, run-time catalog.

Everything that several API replicas must agree on lives here, never in one
process. Multi-key updates run as Lua scripts, so they are atomic: an event is
in the stream exactly when its history update and idempotency marker are.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError, ResponseError

from xsmoe.common.events import POSITIVE, FeedbackEvent, stream_fields
from xsmoe.common.items import ItemMeta, StoredItem, meta_key
from xsmoe.common.keys import Keys, global_id
from xsmoe.service.redis_client import REDIS_ERRORS, AsyncRedis, is_cluster
from xsmoe.service.user_store import UserStore

# One shard's events. KEYS: the shard's stream and popularity, then per event:
# idempotency marker, history, dislikes (every key named by common.keys, declared
# as a key, all with the shard's hash tag). ARGV: history cap, event-id
# ttl, user ttl, then 8 values per event. Only a client-given event id gets a marker:
# a server-made id is unique and never repeated, so remembering it is waste.
# Returns {stream id, duplicate} per event.
_FEEDBACK = """
local cap, ttl, user_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for n = 0, (#ARGV - 3) / 8 - 1 do
  local i, k = 4 + 8 * n, 3 + 3 * n
  local eid, user, item, kind, ts, at, pos, given =
    ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6], ARGV[i+7]
  local marker, hist, neg = KEYS[k], KEYS[k+1], KEYS[k+2]
  local prev = false
  if given == '1' then prev = redis.call('GET', marker) end
  if prev then
    out[#out + 1] = {prev, 1}
  else
    local id = redis.call('XADD', KEYS[1], '*', 'event_id', eid, 'user_id', user,
      'item_id', item, 'type', kind, 'ts', ts, 'received_at', at)
    if given == '1' then redis.call('SET', marker, id, 'EX', ttl) end
    if pos == '1' then
      redis.call('RPUSH', hist, item)
      redis.call('LTRIM', hist, -cap, -1)
      redis.call('EXPIRE', hist, user_ttl)
      redis.call('ZINCRBY', KEYS[2], 1, item)
    else
      redis.call('SADD', neg, item)
      redis.call('EXPIRE', neg, user_ttl)
    end
    out[#out + 1] = {id, 0}
  end
end
return out
"""

# KEYS: history list, dislike set. ARGV: n. One round trip for a recommendation's reads.
_USER_STATE = """
return {redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1), redis.call('SMEMBERS', KEYS[2])}
"""

# KEYS: items set, deleted set, item log, item meta hash, then each item's hash.
# ARGV per item: id, meta JSON, number of feature fields, the field/value pairs.
# An id held by either set, or whose meta outlived its absorption into a snapshot,
# is taken: that item gets 0, the others are added (each on its own). All keys are
# in the catalog's slot. Returns 1/0 per item.
_ADD_ITEMS = """
local out, a = {}, 1
for n = 5, #KEYS do
  local id, meta, nf = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local first = a + 3
  a = first + 2 * nf
  if redis.call('SISMEMBER', KEYS[1], id) == 1 or redis.call('SISMEMBER', KEYS[2], id) == 1
    or redis.call('HEXISTS', KEYS[4], id) == 1 then
    out[#out + 1] = 0
  else
    for i = first, a - 1, 2 do redis.call('HSET', KEYS[n], ARGV[i], ARGV[i + 1]) end
    redis.call('HSET', KEYS[4], id, meta)
    redis.call('SADD', KEYS[1], id)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', 100000, '*', 'op', 'add', 'item_id', id)
    out[#out + 1] = 1
  end
end
return out
"""
ADD_CHUNK = 100  # items per script call: each call holds Redis for a moment only

# KEYS: deleted set, item log, item meta hash. ARGV: item id.
_DELETE_ITEM = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 100000, '*', 'op', 'delete', 'item_id', ARGV[1])
return 1
"""


@dataclass(frozen=True)
class Accepted:
    stream_id: str
    event_id: str
    duplicate: bool


@dataclass(frozen=True)
class CatalogChange:
    log_id: str
    op: str  # "add" | "delete"
    item_id: str


class NotReplicated(RedisError):
    """Stored on the primary but not yet on the replicas asked for: a failover now
    could lose it, so it is not acknowledged (a retry with the same event_id is
    deduplicated)."""


class Store:
    def __init__(
        self, client: AsyncRedis, keys: Keys, wait_replicas: int = 0, wait_ms: int = 200
    ) -> None:
        self.redis = client
        self.keys = keys
        self.wait_replicas = wait_replicas
        self.wait_ms = wait_ms
        self._feedback = client.register_script(_FEEDBACK)
        self._user_state = client.register_script(_USER_STATE)
        self._add_items = client.register_script(_ADD_ITEMS)
        self._delete_item = client.register_script(_DELETE_ITEM)
        self.meta_key = meta_key(keys)
        self.users = UserStore(client, keys)

    # -- feedback and histories ------------------------------------------------------
    async def append_feedback(
        self, events: list[FeedbackEvent], history_cap: int, ttl: int, user_ttl: int
    ) -> list[Accepted]:
        """Append a batch: one atomic script per shard its users fall in, the shards
        at once. A shard that fails fails the batch; the shards already written keep
        their events, which a retry with the same event_ids deduplicates."""
        entries = [stream_fields(e) for e in events]
        by_shard: dict[int, list[int]] = {}
        for n, e in enumerate(entries):
            by_shard.setdefault(self.keys.shard(e["user_id"]), []).append(n)
        shards = sorted(by_shard)
        replies = await asyncio.gather(
            *(
                self._append_shard(
                    s, [events[n] for n in by_shard[s]], [entries[n] for n in by_shard[s]],
                    [history_cap, ttl, user_ttl],
                )
                for s in shards
            )
        )  # fmt: skip
        if self.wait_replicas:
            await asyncio.gather(*(self._wait(self.keys.stream(s)) for s in shards))
        out: list[Accepted | None] = [None] * len(entries)
        for s, reply in zip(shards, replies, strict=True):
            for n, (sid, dup) in zip(by_shard[s], reply, strict=True):
                out[n] = Accepted(global_id(_text(sid), s), entries[n]["event_id"], bool(dup))
        return [a for a in out if a is not None]

    async def _append_shard(
        self, shard: int, events: list[FeedbackEvent], entries: list[dict[str, str]],
        args: list[str | int],
    ) -> Any:  # fmt: skip
        keys = [self.keys.stream(shard), self.keys.popular_of(shard)]
        args = list(args)
        for event, e in zip(events, entries, strict=True):
            user = e["user_id"]
            keys += [
                self.keys.event(e["event_id"], user),
                self.keys.history(user),
                self.keys.disliked(user),
            ]
            positive = "1" if e["type"] in POSITIVE else "0"
            args += [e["event_id"], user, e["item_id"], e["type"], e["ts"]]
            args += [e["received_at"], positive, "1" if event.event_id else "0"]
        return await self._feedback(keys=keys, args=args)

    async def _wait(self, key: str) -> None:
        """WAIT on the primary that holds `key` (on a cluster: that slot's master)."""
        command = ("WAIT", self.wait_replicas, self.wait_ms)
        if is_cluster(self.redis):
            cluster: Any = self.redis
            node = cluster.get_node_from_key(key)
            copies = int(await cluster.execute_command(*command, target_nodes=node))
        else:
            copies = int(await self.redis.execute_command(*command))
        if copies < self.wait_replicas:
            raise NotReplicated(
                f"feedback reached {copies} of {self.wait_replicas} replicas in "
                f"{self.wait_ms} ms; retry with the same event_id"
            )

    async def user_state(self, user_id: str, n: int) -> tuple[list[str], set[str]]:
        """The user's last `n` positive items (newest last) and their dislikes."""
        keys = [self.keys.history(user_id), self.keys.disliked(user_id)]
        history, disliked = await self._user_state(keys=keys, args=[n])
        return [_text(i) for i in history], {_text(i) for i in disliked}

    async def popular(self, n: int) -> list[str]:
        """The `n` items with most positive feedback, counts summed over the shards.
        Each shard's top `n` is read: an item outside every shard's top `n` could in
        principle beat one inside, but users spread evenly, so their counts do too."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in self.keys.popular_keys:
                pipe.zrevrange(key, 0, n - 1, withscores=True)
            tops: list[Any] = await pipe.execute()
        totals: dict[str, float] = {}
        for top in tops:
            for item, score in top:
                totals[_text(item)] = totals.get(_text(item), 0.0) + float(score)
        # Ties as ZREVRANGE orders them (higher member first): one shard reads the same.
        ranked = sorted(totals.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        return [item for item, _ in ranked[:n]]

    # -- run-time catalog ------------------------------------------------------------
    async def add_item(self, item: StoredItem, meta: ItemMeta) -> bool:
        """Store a new item and log it; False if the id exists or was deleted."""
        return (await self.add_items([(item, meta)]))[0]

    async def add_items(self, items: list[tuple[StoredItem, ItemMeta]]) -> list[bool]:
        """`add_item` for many: one script call per ADD_CHUNK items."""
        out: list[bool] = []
        for lo in range(0, len(items), ADD_CHUNK):
            keys = [self.keys.items, self.keys.deleted, self.keys.item_log, self.meta_key]
            args: list[Any] = []
            for item, meta in items[lo : lo + ADD_CHUNK]:
                fields = item.to_hash()
                keys.append(self.keys.item(item.item_id))
                args += [item.item_id, meta.to_json(), len(fields)]
                for field_name, value in fields.items():
                    args += [field_name, value]
            replies: list[Any] = await self._add_items(keys=keys, args=args)
            out += [bool(r) for r in replies]
        return out

    async def delete_item(self, item_id: str) -> bool:
        keys = [self.keys.deleted, self.keys.item_log, self.meta_key]
        return bool(await self._delete_item(keys=keys, args=[item_id]))

    async def item_meta(self, item_ids: list[str]) -> dict[str, ItemMeta]:
        """What the items are (text, tags, times) where stored; a damaged entry is left out."""
        if not item_ids:
            return {}
        raw: list[Any] = await self.redis.hmget(self.meta_key, item_ids)
        out = {}
        for item_id, value in zip(item_ids, raw, strict=True):
            if value is not None:
                try:
                    out[item_id] = ItemMeta.from_json(value)
                except ValueError:
                    continue
        return out

    async def set_item_meta(self, metas: dict[str, ItemMeta]) -> None:
        mapping: dict[Any, Any] = {i: meta.to_json() for i, meta in metas.items()}
        await self.redis.hset(self.meta_key, mapping=mapping)

    async def deleted_among(self, item_ids: list[str]) -> set[str]:
        if not item_ids:
            return set()
        flags: list[Any] = await self.redis.smismember(self.keys.deleted, item_ids)
        return {i for i, f in zip(item_ids, flags, strict=True) if f}

    async def is_runtime_item(self, item_id: str) -> bool:
        return bool(await self.redis.sismember(self.keys.items, item_id))

    async def is_deleted(self, item_id: str) -> bool:
        return bool(await self.redis.sismember(self.keys.deleted, item_id))

    async def get_item(self, item_id: str) -> StoredItem | None:
        fields: Any = await self.redis.hgetall(self.keys.item(item_id))
        return StoredItem.from_hash(item_id, fields) if fields else None

    async def catalog(self) -> tuple[str, list[StoredItem], set[str]]:
        """(log position, every run-time item, every deleted id): a replica's start."""
        last: Any = await self.redis.xrevrange(self.keys.item_log, count=1)
        position = _text(last[0][0]) if last else "0-0"
        ids = sorted(_text(i) for i in await self.redis.smembers(self.keys.items))
        async with self.redis.pipeline(transaction=False) as pipe:
            for item_id in ids:
                pipe.hgetall(self.keys.item(item_id))
            hashes: list[Any] = await pipe.execute()
        items = [StoredItem.from_hash(i, h) for i, h in zip(ids, hashes, strict=True) if h]
        members: Any = await self.redis.smembers(self.keys.deleted)
        deleted = {_text(i) for i in members}
        return position, items, deleted

    async def catalog_changes(self, after: str, block_ms: int) -> list[CatalogChange]:
        reply: Any = await self.redis.xread({self.keys.item_log: after}, count=500, block=block_ms)
        changes = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                f = {_text(k): _text(v) for k, v in fields.items()}
                changes.append(
                    CatalogChange(_text(entry_id), f.get("op", ""), f.get("item_id", ""))
                )
        return changes

    async def ping(self, timeout: float = 0.5) -> bool:
        """Whether Redis answers within `timeout` (a health check must not hang)."""
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), timeout))
        except (TimeoutError, *REDIS_ERRORS):
            return False

    async def online(self) -> dict[str, dict[str, float]]:
        """Prequential HR@10 / NDCG@10 per serving version (recorded by the worker)."""
        raw: Any = await self.redis.hgetall(self.keys.online)
        sums: dict[str, dict[str, float]] = {}
        for field_name, value in raw.items():
            version, _, name = _text(field_name).partition("|")
            sums.setdefault(version, {})[name] = float(value)
        return {
            v: {
                "n": s.get("n", 0.0),
                "hr@10": s.get("hits", 0.0) / s["n"] if s.get("n") else 0.0,
                "ndcg@10": s.get("ndcg", 0.0) / s["n"] if s.get("n") else 0.0,
            }
            for v, s in sorted(sums.items())
        }

    async def lag(self) -> dict[str, int]:
        """Feedback streams' length, the worker group's pending and lag (summed over the
        shards), dead-lettered count."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in self.keys.streams:
                pipe.xlen(stream)
            pipe.xlen(self.keys.dead_letter)
            *lengths, dead = await pipe.execute()
        out = {"length": sum(map(int, lengths)), "dead": int(dead), "pending": 0, "lag": 0}
        for stream, length in zip(self.keys.streams, lengths, strict=True):
            try:
                groups: Any = await self.redis.xinfo_groups(stream)
            except ResponseError:  # no stream or group yet
                out["lag"] += int(length)
                continue
            pending, lag = 0, int(length)
            for group in groups:
                pending = int(group.get("pending", 0))
                behind = group.get("lag")
                lag = int(behind) if behind is not None else pending
            out["pending"] += pending
            out["lag"] += lag
        return out

    # -- snapshots -------------------------------------------------------------------
    async def announce_snapshot(self, version: str) -> None:
        await self.redis.set(self.keys.snapshot_pointer, version)
        await self.redis.publish(self.keys.snapshot_channel, version)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
