"""The feedback stream, read through a consumer group: own pending first, then
entries claimed from dead consumers, then new ones; acks and the dead-letter stream."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import ResponseError

from common.keys import Keys

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


def _entry(entry_id: Any, fields: Any) -> Entry:
    sid = _text(entry_id)
    if not fields:
        return Entry(sid, None)
    try:
        decoded = {_text(k): _text(v) for k, v in fields.items()}
    except UnicodeDecodeError as exc:  # bytes no client of ours writes: poison, not a crash
        return Entry(sid, None, dict(fields), f"undecodable bytes (not UTF-8): {exc.reason}")
    return Entry(sid, decoded, dict(fields))


def _entries(raw: Any) -> list[Entry]:
    return [_entry(entry_id, fields) for entry_id, fields in raw or []]


class FeedbackConsumer:
    def __init__(
        self, client: redis.Redis, keys: Keys, group: str, consumer: str, block_ms: int,
        claim_idle_ms: int, dead_letter_max: int = 100_000,
    ) -> None:  # fmt: skip
        self.redis = client
        self.keys = keys
        self.group = group
        self.consumer = consumer
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.dead_letter_max = dead_letter_max
        self._pending_from: str | None = "0"  # re-read own pending entries first
        self._claim_from = "0-0"
        self._next_claim = 0.0

    def ensure_group(self) -> None:
        """Create the group (from the stream's start: nothing posted before is missed)."""
        try:
            self.redis.xgroup_create(self.keys.feedback, self.group, id="0", mkstream=True)
            log.info("created consumer group %s on %s", self.group, self.keys.feedback)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def restart_pending(self) -> None:
        """Read own pending entries again from the start (after a failed window)."""
        self._pending_from = "0"

    def read(self, count: int) -> list[Entry]:
        try:
            return self._read(count)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("consumer group missing (Redis restarted without data?): recreating")
            self.ensure_group()
            self._pending_from = "0"
            return []

    def _read(self, count: int) -> list[Entry]:
        stream = self.keys.feedback
        if self._pending_from is not None:
            raw: Any = self.redis.xreadgroup(
                self.group, self.consumer, {stream: self._pending_from}, count=count
            )
            entries = _entries(raw[0][1]) if raw else []
            if not entries:
                self._pending_from = None
            else:
                self._pending_from = entries[-1].stream_id
                return entries
        if time.monotonic() >= self._next_claim:
            claimed = self._claim(count)
            if claimed:
                return claimed
        fresh: Any = self.redis.xreadgroup(
            self.group, self.consumer, {stream: ">"}, count=count, block=self.block_ms
        )
        return _entries(fresh[0][1]) if fresh else []

    def _claim(self, count: int) -> list[Entry]:
        reply: Any = self.redis.xautoclaim(
            self.keys.feedback,
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id=self._claim_from,
            count=count,
        )
        self._claim_from = _text(reply[0])
        if self._claim_from == "0-0":
            self._next_claim = time.monotonic() + CLAIM_EVERY_S
        entries = _entries(reply[1])
        if entries:
            log.info("claimed %d entries idle > %d ms", len(entries), self.claim_idle_ms)
        deleted = reply[2] if len(reply) > 2 else []
        if deleted:  # Redis >= 7 drops entries trimmed while pending and reports them
            log.warning("%d pending entries were trimmed from the stream", len(deleted))
        return entries

    def ack(self, stream_ids: list[str]) -> None:
        for lo in range(0, len(stream_ids), 1000):
            self.redis.xack(self.keys.feedback, self.group, *stream_ids[lo : lo + 1000])

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
        both the oldest pending entry and the next undelivered one."""
        stream = self.keys.feedback
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
            log.info("feedback stream: %d consumed entries trimmed (before %s)", removed, safe)
        return removed

    def pending_count(self) -> int:
        info: Any = self.redis.xpending(self.keys.feedback, self.group)
        return int(info["pending"] if isinstance(info, dict) else info[0])


def stream_order(stream_id: str) -> tuple[int, int]:
    """Sort key of a stream id (`<ms>-<seq>`): ids compare as numbers, not text."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _next_id(stream_id: str) -> str:
    ms, seq = stream_order(stream_id)
    return f"{ms}-{seq + 1}"
