"""The feedback stream, read through a consumer group: own pending first, then
entries claimed from dead consumers, then new ones; acks and the dead-letter stream."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from xsmoe.common.keys import Keys, global_id, split_id
from xsmoe.workers.redis_client import SyncRedis

log = logging.getLogger(__name__)
CLAIM_EVERY_S = 5.0


@dataclass(frozen=True)
class Entry:
    stream_id: str
    fields: dict[str, str] | None  # None: trimmed from the stream while pending
    raw: dict[Any, Any] | None = None  # as stored: what the dead-letter stream keeps
    error: str | None = None  # why the entry cannot be read as an event at all


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(entry_id: Any, fields: Any, shard: int) -> Entry:
    sid = global_id(_text(entry_id), shard)
    if not fields:
        return Entry(sid, None)
    try:
        decoded = {_text(k): _text(v) for k, v in fields.items()}
    except UnicodeDecodeError as exc:  # bytes no client of ours writes: poison, not a crash
        return Entry(sid, None, dict(fields), f"undecodable bytes (not UTF-8): {exc.reason}")
    return Entry(sid, decoded, dict(fields))


def _entries(raw: Any, shard: int) -> list[Entry]:
    return [_entry(entry_id, fields, shard) for entry_id, fields in raw or []]


@dataclass
class _Cursor:
    """Where the reading of one shard's stream stands."""

    pending_from: str | None = "0"  # re-read own pending entries first
    claim_from: str = "0-0"
    next_claim: float = 0.0


IDLE_BLOCK_MS = 50  # with several shards, how long one idle read waits on one of them


class FeedbackConsumer:
    """Reads every shard's stream (a shard is a stream with its own hash tag, so on a
    cluster each is one command to one master); ids handed out are global ids."""

    def __init__(
        self, client: SyncRedis, keys: Keys, group: str, consumer: str, block_ms: int,
        claim_idle_ms: int, dead_letter_max: int = 100_000,
    ) -> None:  # fmt: skip
        self.redis = client
        self.keys = keys
        self.group = group
        self.consumer = consumer
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.dead_letter_max = dead_letter_max
        self._cursors = [_Cursor() for _ in range(keys.shards)]
        self._turn = 0  # the shard an idle read waits on next

    def ensure_group(self) -> None:
        """Create the group on every shard (from the stream's start: nothing posted
        before is missed)."""
        for stream in self.keys.streams:
            self._ensure_group(stream)

    def _ensure_group(self, stream: str) -> None:
        try:
            self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            log.info("created consumer group %s on %s", self.group, stream)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def restart_pending(self) -> None:
        """Read own pending entries again from the start (after a failed window)."""
        for cursor in self._cursors:
            cursor.pending_from = "0"

    def read(self, count: int) -> list[Entry]:
        """Up to `count` entries: own pending, claimed and new ones from every shard;
        waits (up to block_ms) only when no shard has anything."""
        if self.keys.shards == 1:  # one stream: one read that blocks while it is empty
            return self._guarded(0, count, self.block_ms)
        out: list[Entry] = []
        for shard in range(self.keys.shards):
            if len(out) >= count:
                break
            out += self._guarded(shard, count - len(out), block=None)
        if out:
            return out
        self._turn = (self._turn + 1) % self.keys.shards
        return self._guarded(self._turn, count, min(self.block_ms, IDLE_BLOCK_MS))

    def _guarded(self, shard: int, count: int, block: int | None) -> list[Entry]:
        try:
            return self._read(shard, count, block)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("consumer group missing (Redis restarted without data?): recreating")
            self._ensure_group(self.keys.stream(shard))
            self._cursors[shard].pending_from = "0"
            return []

    def _read(self, shard: int, count: int, block: int | None) -> list[Entry]:
        stream, cursor = self.keys.stream(shard), self._cursors[shard]
        if cursor.pending_from is not None:
            raw: Any = self.redis.xreadgroup(
                self.group, self.consumer, {stream: cursor.pending_from}, count=count
            )
            entries = _entries(raw[0][1], shard) if raw else []
            if not entries:
                cursor.pending_from = None
            else:
                cursor.pending_from = split_id(entries[-1].stream_id)[0]
                return entries
        if time.monotonic() >= cursor.next_claim:
            claimed = self._claim(shard, count)
            if claimed:
                return claimed
        fresh: Any = self.redis.xreadgroup(
            self.group, self.consumer, {stream: ">"}, count=count, block=block
        )
        return _entries(fresh[0][1], shard) if fresh else []

    def _claim(self, shard: int, count: int) -> list[Entry]:
        cursor = self._cursors[shard]
        reply: Any = self.redis.xautoclaim(
            self.keys.stream(shard),
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id=cursor.claim_from,
            count=count,
        )
        cursor.claim_from = _text(reply[0])
        if cursor.claim_from == "0-0":
            cursor.next_claim = time.monotonic() + CLAIM_EVERY_S
        entries = _entries(reply[1], shard)
        if entries:
            log.info("claimed %d entries idle > %d ms", len(entries), self.claim_idle_ms)
        deleted = reply[2] if len(reply) > 2 else []
        if deleted:  # Redis >= 7 drops entries trimmed while pending and reports them
            log.warning("%d pending entries were trimmed from the stream", len(deleted))
        return entries

    def ack(self, stream_ids: list[str]) -> None:
        by_shard: dict[int, list[str]] = {}
        for gid in stream_ids:
            sid, shard = split_id(gid)
            by_shard.setdefault(shard, []).append(sid)
        for shard, ids in sorted(by_shard.items()):
            for lo in range(0, len(ids), 1000):
                self.redis.xack(self.keys.stream(shard), self.group, *ids[lo : lo + 1000])

    def dead_letter(self, entries: list[Entry], reason: str) -> None:
        """Copy to the dead-letter stream, then ack (a crash duplicates, never loses)."""
        if not entries:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                fields: dict[Any, Any] = dict(entry.raw or entry.fields or {})
                fields.update(stream_id=entry.stream_id, reason=reason[:500])
                pipe.xadd(
                    self.keys.dead_letter, fields, maxlen=self.dead_letter_max, approximate=True
                )
            pipe.execute()
        self.ack([e.stream_id for e in entries])
        log.warning("dead-lettered %d events: %s", len(entries), reason)

    def trim(self) -> int:
        """Drop stream entries every consumer of the group is done with: those before
        both the oldest pending entry and the next undelivered one (per shard)."""
        return sum(self._trim(stream) for stream in self.keys.streams)

    def _trim(self, stream: str) -> int:
        groups: Any = self.redis.xinfo_groups(stream)
        ours = [g for g in groups if _text(g["name"]) == self.group]
        if not ours:
            return 0
        safe = _next_id(_text(ours[0]["last-delivered-id"]))
        summary: Any = self.redis.xpending(stream, self.group)
        if int(summary["pending"]) and summary.get("min"):
            safe = min(safe, _text(summary["min"]), key=stream_order)
        removed = int(self.redis.xtrim(stream, minid=safe, approximate=False))
        if removed:
            log.info("%s: %d consumed entries trimmed (before %s)", stream, removed, safe)
        return removed

    def pending_count(self) -> int:
        total = 0
        for stream in self.keys.streams:
            info: Any = self.redis.xpending(stream, self.group)
            total += int(info["pending"] if isinstance(info, dict) else info[0])
        return total


def stream_order(stream_id: str) -> tuple[int, int, int]:
    """Sort key of a (global) stream id, `<ms>-<seq>[@shard]`: ids compare as numbers,
    not text; ids of several shards interleave by time."""
    sid, shard = split_id(stream_id)
    ms, _, seq = sid.partition("-")
    return int(ms), int(seq or 0), shard


def _next_id(stream_id: str) -> str:
    ms, seq, _ = stream_order(stream_id)
    return f"{ms}-{seq + 1}"
