"""The worker loop: leader lock -> consume -> window -> train + gate -> publish -> ack.

Order of effects for a window (each step durable before the next):
  1. the candidate snapshot directory is written (temp name + rename; not current)
  2. the window's line is appended to the ledger (the commit point)
  3. promoted: CURRENT moves, the Redis pointer is set, replicas are notified
  4. the window's stream entries are acked
A restart re-does 3-4 for the ledger's last line and deletes uncommitted snapshots,
so an accepted event is trained into exactly one version or dead-lettered.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from typing import Any

import redis
from pydantic import ValidationError
from redis.exceptions import RedisError

from common import ledger
from common.events import POSITIVE, FeedbackEvent, from_stream_fields
from common.keys import Keys
from model.features import FeatureStore
from model.item_tower import ItemTable
from model.snapshot import (
    Snapshot,
    current_version,
    list_versions,
    load_snapshot,
    save_snapshot,
    set_current,
)
from workers.catalog import sync_runtime_items
from workers.consumer import Entry, FeedbackConsumer
from workers.leader import LeaderLock
from workers.settings import WorkerSettings
from workers.trainer import WindowResult, train_and_gate, window_data
from workers.window import WindowBuffer

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, settings: WorkerSettings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.opts = settings.worker
        self.root = settings.snapshots
        self.keys = Keys(settings.redis_prefix)
        self.redis = client or redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=self.opts.block_ms / 1000 + 5,
            socket_connect_timeout=2,
        )
        self.consumer = FeedbackConsumer(
            self.redis,
            self.keys,
            self.opts.group,
            self.opts.consumer,
            self.opts.block_ms,
            self.opts.claim_idle_ms,
        )
        self.lock = LeaderLock(
            self.redis, self.keys.leader, self.opts.consumer, self.opts.lock_ttl_ms
        )
        self.buffer = WindowBuffer(self.opts.window_events, self.opts.window_seconds)
        self.raw: dict[str, Entry] = {}  # stream id -> entry of the open window
        self.stop = threading.Event()
        self.failures = 0
        self.window_no = 0
        self._serving: Snapshot | None = None
        self._store: FeatureStore | None = None

    # -- the loop ------------------------------------------------------------------
    def run(self) -> None:
        backoff = 0.1
        log.info(
            "worker %s on %s, snapshots in %s", self.opts.consumer, self.keys.feedback, self.root
        )
        while not self.stop.is_set():
            try:
                self.step()
                backoff = 0.1
            except (RedisError, OSError) as exc:
                log.warning("Redis unavailable (%s); retrying in %.1f s", exc, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self.lock.release()
        log.info("worker stopped")

    def step(self) -> None:
        if not self.lock.held:
            if not self.lock.acquire():
                self.stop.wait(self.opts.lock_ttl_ms / 3000)
                return
            self.consumer.ensure_group()
            self.recover()
        room = max(1, min(1000, self.opts.window_events - len(self.buffer)))
        for entry in self.consumer.read(room):
            self._take(entry)
        if self.buffer.ready():
            self.close_window()

    def _take(self, entry: Entry) -> None:
        if entry.fields is None:
            log.error(
                "entry %s was trimmed from the stream before training: acked", entry.stream_id
            )
            self.consumer.ack([entry.stream_id])
            return
        try:
            event = from_stream_fields(entry.fields)
        except ValidationError as exc:
            self.consumer.dead_letter([entry], f"malformed event: {exc.errors()[0]['msg']}")
            return
        self.raw[entry.stream_id] = entry
        self.buffer.add(entry.stream_id, event)

    # -- one window ----------------------------------------------------------------
    def close_window(self) -> None:
        ordered = self.buffer.ordered()
        stream_ids = self.buffer.stream_ids()
        events = [e for _, e in ordered]
        log.info("window %d closed: %d events", self.window_no, len(events))
        if not self.opts.train:
            self.commit(self._record("ingested", "training off", None, None, ordered, stream_ids))
            return
        try:
            serving = self.serving()
            store = self.feature_store(serving)
            sync_runtime_items(self.redis, self.keys, store)
            table = _table(store, serving)
            row_of = {item_id: row for row, item_id in enumerate(store.item_ids)}
            users = list(dict.fromkeys(e.user_id for e in events))
            data, unknown = window_data(events, row_of, self.contexts(users), self.opts)
            result = train_and_gate(serving.model, table, data, self.opts, seed=self.window_no)
        except (RedisError, OSError):
            raise
        except Exception as exc:
            self._failed(exc)
            return
        if unknown:
            missing = set(unknown)
            bad = {sid for sid, e in ordered if e.item_id in missing}
            entries = [self.raw[s] for s, _ in ordered if s in bad]
            self.consumer.dead_letter(entries, f"unknown items {unknown[:10]}")
            stream_ids = [s for s in stream_ids if s not in bad]
            ordered = [(s, e) for s, e in ordered if s not in bad]
        if not self.lock.renew():
            log.warning("leadership lost mid-window: not publishing; entries stay pending")
            self._reset()
            return
        version = None
        if result.candidate is not None:
            version = self._save(result, serving, store, table, stream_ids)
        record = self._record(result.outcome, result.reason, version, serving, ordered, stream_ids)
        record["metrics"] = result.metrics
        if result.candidate is not None and result.report is not None:
            record["experts"] = {m: list(c) for m, c in result.report.experts.items()}
            record["utilization"] = result.report.utilization
        record["online"] = {"version": serving.version, **result.online}
        self.commit(record)

    def _save(
        self,
        result: WindowResult,
        serving: Snapshot,
        store: FeatureStore,
        table: ItemTable,
        stream_ids: list[str],
    ) -> str:
        assert result.candidate is not None and result.report is not None
        embeddings = result.candidate.item_embeddings(table).numpy()
        manifest = serving.manifest
        path = save_snapshot(
            self.root,
            result.candidate,
            list(store.item_ids),
            embeddings,
            {m: store.specs[m] for m in table.features},
            parent=serving.version,
            metrics=result.metrics,
            extra={
                "gate": {"outcome": result.outcome, "reason": result.reason},
                "window": {
                    "number": self.window_no,
                    "events": len(stream_ids),
                    "stream_range": [stream_ids[0], stream_ids[-1]] if stream_ids else [],
                    "trained_sequences": result.report.train_cases,
                },
                "utilization": result.report.utilization,
                "pruned": result.report.pruned,
                "popular": manifest.get("popular", []),
                "source": manifest.get("source", {}),
            },
        )
        return path.name

    def _record(
        self,
        outcome: str,
        reason: str,
        version: str | None,
        serving: Snapshot | None,
        ordered: list[tuple[str, FeedbackEvent]],
        stream_ids: list[str],
    ) -> dict[str, Any]:
        return {
            "window": self.window_no,
            "outcome": outcome,
            "reason": reason,
            "version": version,
            "parent": serving.version if serving else None,
            "created_at": time.time(),
            "events": len(ordered),
            "stream_ids": stream_ids,
            "event_ids": [e.event_id for _, e in ordered],
            "positives": [[e.user_id, e.item_id] for _, e in ordered if e.type in POSITIVE],
        }

    def commit(self, record: dict[str, Any]) -> None:
        ledger.append(self.root, record)  # the commit point
        log.info(
            "window %d %s%s: %s",
            record["window"],
            record["outcome"],
            f" as {record['version']}" if record["version"] else "",
            record["reason"],
        )
        self.finish(record, fresh=True)
        self.window_no = int(record["window"]) + 1
        self._reset()

    def finish(self, record: dict[str, Any], *, fresh: bool) -> None:
        """Effects after the commit point; safe to repeat after a crash."""
        if record["outcome"] == "promoted" and record["version"] in list_versions(self.root):
            if current_version(self.root) != record["version"]:
                set_current(self.root, record["version"])
            self.redis.set(self.keys.snapshot_pointer, record["version"])
            self.redis.publish(self.keys.snapshot_channel, record["version"])
        self.consumer.ack(list(record["stream_ids"]))
        if fresh:  # soft state: skipped when a crashed window is finished on restart
            self._update_contexts(record.get("positives", []))
            online = record.get("online") or {}
            if online.get("cases"):
                self._add_online(online)
        self._retain()

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        log.exception(
            "window %d failed (%d/%d)", self.window_no, self.failures, self.opts.max_failures
        )
        if self.failures >= self.opts.max_failures:
            entries = [self.raw[s] for s in self.buffer.stream_ids() if s in self.raw]
            self.consumer.dead_letter(entries, f"poison window: {exc}")
            self.failures = 0
        self._reset()
        self.stop.wait(min(5.0, 0.5 * self.failures))

    def _reset(self) -> None:
        self.buffer.clear()
        self.raw.clear()
        self.consumer.restart_pending()

    # -- recovery and retention ----------------------------------------------------
    def recover(self) -> None:
        """Finish the ledger's last window; drop snapshots no ledger line committed."""
        records = ledger.records(self.root)
        committed = {r["version"] for r in records if r.get("version")}
        current = current_version(self.root)
        newest = max((int(v[1:]) for v in committed | {current or "v0"}), default=0)
        for version in list_versions(self.root):
            if int(version[1:]) > newest and version not in committed and version != current:
                log.warning("removing %s: written by a window that never committed", version)
                shutil.rmtree(self.root / version, ignore_errors=True)
        if records:
            self.finish(records[-1], fresh=False)
            self.window_no = int(records[-1]["window"]) + 1
        self._reset()

    def _retain(self) -> None:
        versions = list_versions(self.root)
        current = current_version(self.root)
        for version in versions[: max(0, len(versions) - self.opts.keep)]:
            if version != current:
                shutil.rmtree(self.root / version, ignore_errors=True)
                log.info("retention: removed %s (keeping %d)", version, self.opts.keep)

    # -- state ---------------------------------------------------------------------
    def serving(self) -> Snapshot:
        version = current_version(self.root)
        if version is None:
            raise RuntimeError(f"no current snapshot in {self.root}: run xsmoe bootstrap first")
        if self._serving is None or self._serving.version != version:
            self._serving = load_snapshot(self.root / version)
        return self._serving

    def feature_store(self, serving: Snapshot) -> FeatureStore:
        if self._store is None:
            dataset = str(serving.manifest.get("source", {}).get("dataset") or self.opts.dataset)
            path = self.opts.features_dir or self.settings.features_dir(dataset)
            store = FeatureStore.open(path)
            for m, spec in serving.feature_specs.items():
                have = store.specs.get(m)
                if have is None or have.as_json() != spec.as_json():
                    raise RuntimeError(
                        f"feature store {path} does not match the snapshot's {m} features"
                    )
            self._store = store
        return self._store

    def contexts(self, users: list[str]) -> dict[str, list[str]]:
        if not self.opts.context:
            return {}
        with self.redis.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.lrange(self.keys.context(user), -self.opts.context, -1)
            found: list[Any] = pipe.execute()
        return {u: [i.decode() for i in items] for u, items in zip(users, found, strict=True)}

    def _update_contexts(self, positives: list[list[str]]) -> None:
        if not self.opts.context or not positives:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for user, item in positives:
                pipe.rpush(self.keys.context(user), item)
            for user in {u for u, _ in positives}:
                pipe.ltrim(self.keys.context(user), -self.opts.context, -1)
            pipe.execute()

    def _add_online(self, online: dict[str, Any]) -> None:
        version, n = online["version"], float(online["cases"])
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrbyfloat(self.keys.online, f"{version}|n", n)
            pipe.hincrbyfloat(self.keys.online, f"{version}|hits", float(online["hr@10"]) * n)
            pipe.hincrbyfloat(self.keys.online, f"{version}|ndcg", float(online["ndcg@10"]) * n)
            pipe.execute()


def _table(store: FeatureStore, serving: Snapshot) -> ItemTable:
    full = ItemTable.from_store(store)
    used = serving.model.config.shapes
    return ItemTable({m: full.features[m] for m in used}, {m: full.present[m] for m in used})
