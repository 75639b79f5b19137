"""What the worker tells the dashboard through Redis: a status hash refreshed every
couple of seconds by a heartbeat thread (with a TTL, so a dead worker's status
ages and then goes), and a capped stream of expert changes (pruning, expansion)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from xsmoe.common.keys import Keys
from xsmoe.workers.metrics import WorkerMetrics
from xsmoe.workers.redis_client import REDIS_ERRORS, SyncRedis
from xsmoe.workers.window import WindowBuffer

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
# Long enough for the dashboard to say "not seen for N s" of a stopped worker, short
# enough that a retired deployment's status leaves Redis.
STATUS_TTL_S = 3600
MODEL_EVENTS_MAX = 1000


def untrained(redis: SyncRedis, keys: Keys, group: str) -> tuple[int, bool]:
    """Entries the group has not acked yet, and whether that count is exact: Redis 7
    reports the group's lag (undelivered); an older one does not, and then the
    stream's length stands in (it holds the untrained entries plus at most the few
    acked since the last trim, which follows every window)."""
    total, exact = 0, True
    for stream in keys.streams:
        try:
            groups: Any = redis.xinfo_groups(stream)
        except REDIS_ERRORS:  # no stream yet: nothing accepted there
            continue
        ours = [g for g in groups if _text(g["name"]) == group]
        lag = ours[0].get("lag") if ours else None
        if ours and lag is not None:
            total += int(ours[0].get("pending") or 0) + int(lag)
        else:  # no group yet (nothing delivered), or no lag reported
            total += int(redis.xlen(stream))
            exact = exact and not ours
    return total, exact


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def status_fields(
    consumer: str,
    phase: str,
    window_no: int,
    buffer: WindowBuffer,
    last: Mapping[str, Any] | None,
    untrained_events: tuple[int, bool],
    now: float,
) -> dict[str, str]:
    """The status hash's fields (strings; empty where there is nothing to say)."""
    fill = len(buffer)
    opened: float | None = None
    next_close: float | None = None
    if buffer.opened_at is not None and fill:
        age = max(time.monotonic() - buffer.opened_at, 0.0)
        opened = now - age
        deadline = opened + buffer.max_seconds
        if fill >= buffer.max_events:
            next_close = now
        else:  # by the events' rate so far, or the deadline, whichever comes first
            rate = fill / max(age, 1e-3)
            next_close = min(deadline, now + (buffer.max_events - fill) / rate)
    out = {
        "leader": consumer,
        "updated_at": f"{now:.3f}",
        "phase": phase,
        "window": str(window_no),
        "fill": str(fill),
        "window_events": str(buffer.max_events),
        "window_seconds": f"{buffer.max_seconds:g}",
        "opened_at": f"{opened:.3f}" if opened is not None else "",
        "next_close_at": f"{next_close:.3f}" if next_close is not None else "",
        "untrained": str(untrained_events[0]),
        "untrained_exact": "1" if untrained_events[1] else "0",
    }
    for name in ("window", "outcome", "reason", "version", "created_at"):
        value = (last or {}).get(name)
        out[f"last_{name}"] = "" if value is None else str(value)[:300]
    return out


def expert_changes(
    before: Mapping[str, Sequence[int]],
    after: Mapping[str, Sequence[int]],
    pruned: Mapping[str, Sequence[int | None]],
) -> list[dict[str, Any]]:
    """Per modality and stage where a candidate pruned or added an expert: prune runs
    first (at most one per stage), then expand adds one below the cap."""
    out = []
    for modality, counts in after.items():
        old = list(before.get(modality, []))
        victims = list(pruned.get(modality, []))
        for s, n_after in enumerate(counts):
            n_before = old[s] if s < len(old) else 0
            victim = victims[s] if s < len(victims) else None
            kept = n_before - (1 if victim is not None else 0)
            kinds = ["pruning"] if victim is not None else []
            kinds += ["expansion"] if n_after > kept else []
            if kinds:
                out.append(
                    {
                        "kinds": kinds,
                        "modality": modality,
                        "stage": s + 1,
                        "before": n_before,
                        "after": int(n_after),
                        "pruned_expert": victim,
                    }
                )
    return out


def publish_changes(
    redis: SyncRedis,
    keys: Keys,
    metrics: WorkerMetrics,
    changes: list[dict[str, Any]],
    record: Mapping[str, Any],
) -> None:
    """One stream entry per changed stage, naming the candidate and its fate."""
    if not changes:
        return
    with redis.pipeline(transaction=False) as pipe:
        for change in changes:
            for kind in change["kinds"]:
                metrics.expert_changes.labels(kind, change["modality"]).inc()
            fields: dict[Any, Any] = {
                "kind": "+".join(change["kinds"]),
                "modality": change["modality"],
                "stage": str(change["stage"]),
                "before": str(change["before"]),
                "after": str(change["after"]),
                "pruned_expert": json.dumps(change["pruned_expert"]),
                "version": str(record.get("version") or ""),
                "parent": str(record.get("parent") or ""),
                "outcome": str(record.get("outcome", "")),
                "window": str(record.get("window", "")),
                "at": f"{time.time():.3f}",
            }
            pipe.xadd(keys.model_events, fields, maxlen=MODEL_EVENTS_MAX, approximate=True)
        pipe.execute()


class Heartbeat:
    """Writes the leader's status every HEARTBEAT_S, training or not (a window can
    train for minutes: the page must still see the worker alive)."""

    def __init__(
        self,
        redis: SyncRedis,
        keys: Keys,
        group: str,
        metrics: WorkerMetrics,
        fields: Callable[[tuple[int, bool]], dict[str, str] | None],
        stop: threading.Event,
    ) -> None:
        self.redis, self.keys, self.group = redis, keys, group
        self.metrics = metrics
        self.fields = fields  # None while this process does not lead
        self.stop = stop
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)
            self.thread.start()

    def beat(self) -> None:
        lag = untrained(self.redis, self.keys, self.group)
        self.metrics.untrained.set(lag[0])
        fields = self.fields(lag)
        self.metrics.leader.set(1 if fields is not None else 0)
        if fields is None:
            return
        self.metrics.window_fill.set(int(fields["fill"]))
        with self.redis.pipeline(transaction=False) as pipe:
            mapping: dict[Any, Any] = dict(fields)
            pipe.hset(self.keys.worker_status, mapping=mapping)
            pipe.expire(self.keys.worker_status, STATUS_TTL_S)
            pipe.execute()

    def stopped(self) -> None:
        """The last word of a leader that stops on purpose: the page says so, rather
        than only that it went quiet."""
        with contextlib.suppress(*REDIS_ERRORS):
            if self.fields((0, True)) is not None:
                now = f"{time.time():.3f}"
                self.redis.hset(
                    self.keys.worker_status, mapping={"phase": "stopped", "updated_at": now}
                )

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.beat()
            except REDIS_ERRORS as exc:  # the main loop reports outages; stay quiet
                log.debug("worker status not written: %s", exc)
            except Exception:
                log.exception("worker status not written")
            self.stop.wait(HEARTBEAT_S)

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(timeout=5)
