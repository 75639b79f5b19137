"""The worker loop: leader lock -> consume -> window -> train + gate -> publish -> ack.

Order of effects for a window (each step durable before the next):
  1. the candidate snapshot directory is written (temp name + rename; not current)
  2. the window's detail, then its ledger line (the commit point); the buffer is
     emptied at once, so nothing committed is ever trained again
  3. the candidate is uploaded to the snapshot store; promoted: the store's pointer
     moves, then the Redis pointer is set (fenced by the lock)
  4. the window's stream entries are acked, then the window is marked finished
Steps 3-4 are retried until they succeed; a restart re-does them for the last
window only if it is not marked finished (so an operator's rollback sticks) and
deletes uncommitted snapshots. An accepted event is trained into exactly one
version or dead-lettered, and only a malformed event or a window that fails to
train again and again is dead-lettered: a snapshot problem leaves events pending.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from xsmoe.common import ledger
from xsmoe.common.events import POSITIVE, FeedbackEvent, from_stream_fields
from xsmoe.common.redis_url import redacted
from xsmoe.common.snapshot_store import next_version, open_store
from xsmoe.model.ann import RecallTooLow
from xsmoe.model.features import FeatureStore
from xsmoe.model.item_tower import ItemTable
from xsmoe.model.snapshot import (
    Snapshot,
    SnapshotError,
    list_versions,
    load_snapshot,
    save_snapshot,
)
from xsmoe.model.train import TrainingCancelled
from xsmoe.workers import redis_client
from xsmoe.workers.catalog import absorb_runtime_items, runtime_item_ids, sync_runtime_items
from xsmoe.workers.consumer import Entry, FeedbackConsumer
from xsmoe.workers.leader import LeaderLock
from xsmoe.workers.metrics import MetricsServer, WorkerMetrics
from xsmoe.workers.redis_client import REDIS_ERRORS, SyncRedis
from xsmoe.workers.settings import WorkerSettings
from xsmoe.workers.status import Heartbeat, expert_changes, publish_changes, status_fields
from xsmoe.workers.trainer import WindowResult, train_and_gate, window_data
from xsmoe.workers.window import WindowBuffer

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0
RETRY_REFUSED_S = 60.0  # how long an unreadable snapshot is not tried again


class SnapshotUnavailable(Exception):
    """The serving snapshot or its feature store cannot be read: not the events' fault,
    so they stay pending until it can."""


class LeadershipLost(Exception):
    """Another process holds the leader lock: this one must not publish or ack."""


@dataclass
class Unfinished:
    """A committed window whose effects (pointer, acks) may not all have happened."""

    record: dict[str, Any]
    detail: dict[str, Any]
    fresh: bool  # committed by this process (soft state still to update)


class Worker:
    def __init__(self, settings: WorkerSettings, client: SyncRedis | None = None) -> None:
        self.settings = settings
        self.opts = settings.worker
        self.root = settings.snapshots  # where versions are written (and the ledger)
        self.store = open_store(settings)  # where they are published; may be this root
        self.keys = settings.keys
        self.redis = client or redis_client.connect(
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
            self.opts.dead_letter_max,
        )
        self.lock = LeaderLock(
            self.redis, self.keys.leader, self.opts.consumer, self.opts.lock_ttl_ms
        )
        self.buffer = WindowBuffer(self.opts.window_events, self.opts.window_seconds)
        self.raw: dict[str, Entry] = {}  # stream id -> entry of the open window
        self.stop = threading.Event()
        self.failures = 0  # consecutive failed tries of the open window
        self.window_no = 0
        self.unfinished: Unfinished | None = None
        self._recovered = False
        self._serving: Snapshot | None = None
        self._refused: dict[str, float] = {}  # unreadable version -> when it was tried
        self._store: FeatureStore | None = None
        self.metrics = WorkerMetrics()
        self.metrics_server: MetricsServer | None = None
        self.phase = "reading"  # or "training": what the status hash says
        self.last: dict[str, Any] | None = None  # the last committed window's record
        self._closed_at: float | None = None  # perf_counter at the open window's close
        self._changes: list[dict[str, Any]] = []  # expert changes of the window committing
        self.heartbeat = Heartbeat(
            self.redis, self.keys, self.opts.group, self.metrics, self.status, self.stop
        )

    # -- the loop ------------------------------------------------------------------
    def run(self) -> None:
        """Never exits on an error: logs it, backs off and goes on until stopped."""
        backoff = 0.1
        log.info(
            "worker %s on %d feedback shard(s) of %s, snapshots in %s, published to %s",
            self.opts.consumer,
            self.keys.shards,
            redacted(self.settings.redis_url),
            self.root,
            self.store.url,
        )
        if self.opts.metrics_port is not None and self.metrics_server is None:
            self.metrics_server = MetricsServer(
                self.metrics, self.opts.metrics_port, self.opts.metrics_host
            )
        self.heartbeat.start()
        while not self.stop.is_set():
            try:
                self.step()
                backoff = 0.1
                continue
            except REDIS_ERRORS as exc:
                log.warning("Redis or disk unavailable (%s); retrying in %.1f s", exc, backoff)
            except SnapshotUnavailable as exc:
                log.error("%s; events stay pending, retrying in %.1f s", exc, backoff)
            except LeadershipLost as exc:
                log.warning("%s: dropping the open window (its entries stay pending)", exc)
                self._lose_lead()
            except Exception:
                log.exception("unexpected error; the open window is re-read after %.1f s", backoff)
                self._reset()
            self.stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        self.heartbeat.join()
        self.heartbeat.stopped()
        self.lock.release()
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None
        log.info("worker stopped")

    def step(self) -> None:
        if not self.lock.held:
            self._recovered = False
            if not self.lock.acquire():
                self.stop.wait(self.opts.lock_ttl_ms / 3000)
                return
        if not self._recovered:
            self.consumer.ensure_group()
            self.recover()
            self._recovered = True
        if self.unfinished is not None:
            self.finish(self.unfinished)
        if not self.buffer.ready():
            room = max(1, min(1000, self.opts.window_events - len(self.buffer)))
            for entry in self.consumer.read(room):
                self._take(entry)
        if self.buffer.ready():
            self.phase, self._closed_at = "training", time.perf_counter()
            try:
                self.close_window()
            finally:
                self.phase = "reading"

    def status(self, untrained: tuple[int, bool]) -> dict[str, str] | None:
        """The status hash's fields while this process leads (the heartbeat's view)."""
        if not self.lock.held:
            return None
        return status_fields(
            self.opts.consumer,
            self.phase,
            self.window_no,
            self.buffer,
            self.last,
            untrained,
            time.time(),
        )

    def _dead_letter(self, entries: list[Entry], reason: str, kind: str) -> None:
        self.consumer.dead_letter(entries, reason)
        self.metrics.dead_lettered.labels(kind).inc(len(entries))

    def _take(self, entry: Entry) -> None:
        self.metrics.consumed.inc()
        if entry.error is not None:
            self._dead_letter([entry], f"malformed entry: {entry.error}", "malformed")
            return
        if entry.fields is None:
            log.error(
                "entry %s was trimmed from the stream before training: acked", entry.stream_id
            )
            self.consumer.ack([entry.stream_id])
            return
        try:
            event = from_stream_fields(entry.fields)
        except ValidationError as exc:
            self._dead_letter([entry], f"malformed event: {exc.errors()[0]['msg']}", "malformed")
            return
        self.raw[entry.stream_id] = entry
        self.buffer.add(entry.stream_id, event)

    def _lose_lead(self) -> None:
        self.lock.held = False
        self.unfinished = None  # the next leader (maybe this process) finishes it
        self._reset()

    # -- one window ----------------------------------------------------------------
    def close_window(self) -> None:
        ordered = self.buffer.ordered()
        stream_ids = self.buffer.stream_ids()  # with repeated event ids: acked, not trained
        events = [e for _, e in ordered]
        self._changes = []
        log.info("window %d closed: %d events", self.window_no, len(events))
        if not self.opts.train:
            self.commit(*self._record("ingested", "training off", None, None, ordered, stream_ids))
            return
        serving = self.serving()
        store = self.feature_store(serving)
        sync_runtime_items(self.redis, self.keys, store)
        table = _table(store, serving)
        row_of = {item_id: row for row, item_id in enumerate(store.item_ids)}
        users = list(dict.fromkeys(e.user_id for e in events))
        contexts = self.contexts(users)
        try:
            data, unknown = window_data(events, row_of, contexts, self.opts)
            result = train_and_gate(
                serving.model, table, data, self.opts, seed=self.window_no, cancel=self.stop.is_set
            )
        except TrainingCancelled:
            log.info("stopping: window %d abandoned mid-training (stays pending)", self.window_no)
            self._reset()
            return
        except REDIS_ERRORS:
            raise
        except Exception as exc:
            self._failed(exc)
            return
        if unknown:
            missing = set(unknown)
            bad = {s for s, e in ordered if e.item_id in missing}
            self._dead_letter(
                [self.raw[s] for s in bad], f"unknown items {unknown[:10]}", "unknown_item"
            )
            ordered = [(s, e) for s, e in ordered if s not in bad]
            stream_ids = [s for s in stream_ids if s not in bad]
        if not self.lock.renew():
            raise LeadershipLost("leadership lost mid-window: not publishing")
        version = None
        if result.candidate is not None:
            try:
                version = self._save(result, serving, store, table, stream_ids)
            except RecallTooLow as exc:
                # Nothing was written: the window is committed as rejected (its events
                # acked, never trained again) and serving keeps the version it has.
                log.warning("window %d: candidate not published: %s", self.window_no, exc)
                result = replace(result, outcome="rejected", reason=str(exc), candidate=None)
        record, detail = self._record(
            result.outcome, result.reason, version, serving, ordered, stream_ids
        )
        record["metrics"] = result.metrics
        if result.candidate is not None and result.report is not None:
            record["experts"] = {m: list(c) for m, c in result.report.experts.items()}
            record["utilization"] = result.report.utilization
            before = serving.manifest.get("experts") or {}
            self._changes = expert_changes(before, result.report.experts, result.report.pruned)
        record["online"] = {"version": serving.version, **result.online}
        if version is not None:  # run-time items this snapshot now carries
            runtime = runtime_item_ids(self.redis, self.keys)
            detail["absorbed"] = sorted(i for i in runtime if i in store)
        self.commit(record, detail)

    def _save(
        self,
        result: WindowResult,
        serving: Snapshot,
        store: FeatureStore,
        table: ItemTable,
        stream_ids: list[str],
    ) -> str:
        assert result.candidate is not None and result.report is not None
        embeddings = result.item_vectors  # the gate's pass over the catalog, reused
        if embeddings is None:
            embeddings = result.candidate.item_embeddings(table).numpy()
        manifest = serving.manifest
        path = save_snapshot(
            self.root,
            result.candidate,
            list(store.item_ids),
            embeddings,
            {m: store.specs[m] for m in table.features},
            parent=serving.version,
            version=next_version(self.root, self.store),
            metrics=result.metrics,
            queries=result.query_vectors,
            index=self.settings.index.to_options(),
            extra={
                "gate": {"outcome": result.outcome, "reason": result.reason},
                "window": {
                    "number": self.window_no,
                    "events": len(stream_ids),
                    "stream_range": _range(stream_ids),
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
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The window's compact ledger line and its detail (kept beside, rotated)."""
        record = {
            "window": self.window_no,
            "outcome": outcome,
            "reason": reason,
            "version": version,
            "parent": serving.version if serving else None,
            "created_at": time.time(),
            "events": len(ordered),
            "stream_range": _range(stream_ids),
            "digest": ledger.digest(stream_ids),
        }
        detail = {
            "window": self.window_no,
            "stream_ids": stream_ids,
            "event_ids": [e.event_id for _, e in ordered],
            "positives": [[e.user_id, e.item_id] for _, e in ordered if e.type in POSITIVE],
        }
        return record, detail

    def commit(self, record: dict[str, Any], detail: dict[str, Any]) -> None:
        record["detail"] = ledger.write_detail(self.root, int(record["window"]), detail)
        if not self.lock.renew():  # the last check before the commit point
            raise LeadershipLost(f"window {record['window']} not committed: lock lost")
        ledger.append(self.root, record)  # the commit point
        self._committed(record)
        log.info(
            "window %d %s%s: %s",
            record["window"],
            record["outcome"],
            f" as {record['version']}" if record["version"] else "",
            record["reason"],
        )
        self.window_no = int(record["window"]) + 1
        self.failures = 0
        self.unfinished = Unfinished(record, detail, fresh=True)
        self._reset()  # from here on the window is done: a retry finishes, never retrains
        self.finish(self.unfinished)

    def finish(self, todo: Unfinished) -> None:
        """Effects after the commit point; safe to repeat until they all succeed."""
        record, detail = todo.record, todo.detail
        version: str | None = record.get("version")
        if version is not None and version in list_versions(self.root):
            self.store.put(self.root / version)  # rejected ones too: an operator may promote one
            if record["outcome"] == "promoted":
                if not self.lock.renew():
                    raise LeadershipLost(f"not promoting {version}")
                if self._pointer() != version:
                    self.store.set_pointer(version)
                keys = self.keys
                if not self.lock.publish(keys.snapshot_pointer, keys.snapshot_channel, version):
                    raise LeadershipLost(f"{version} not announced")
                absorb_runtime_items(self.redis, self.keys, detail.get("absorbed", []))
                with contextlib.suppress(SnapshotUnavailable):  # the last good one from now on
                    self.serving()
        self.consumer.ack(list(detail.get("stream_ids", [])))
        if todo.fresh:  # soft state: skipped when a crashed window is finished on restart
            self._update_contexts(detail.get("positives", []))
            if record["outcome"] == "promoted" and version is not None:
                self.metrics.published.inc()
            online = record.get("online") or {}
            if online.get("cases"):
                self._add_online(online)
            todo.fresh = False  # a retry after a failure below must not count it twice
        ledger.mark_finished(self.root, int(record["window"]))
        self.unfinished = None
        self._tidy()

    def _committed(self, record: dict[str, Any]) -> None:
        """Metrics and the dashboard's events of a window just committed (best effort:
        the window is done whatever happens here)."""
        self.metrics.windows.labels(record["outcome"]).inc()
        if self._closed_at is not None:
            self.metrics.window_seconds.observe(time.perf_counter() - self._closed_at)
            self._closed_at = None
        self.last = _summary(record)
        changes, self._changes = self._changes, []
        try:
            publish_changes(self.redis, self.keys, self.metrics, changes, record)
        except REDIS_ERRORS as exc:
            log.warning("expert changes of window %s not published: %s", record["window"], exc)

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        self.metrics.windows.labels("failed").inc()
        self._changes = []
        log.exception(
            "window %d failed to train (%d/%d)",
            self.window_no,
            self.failures,
            self.opts.max_failures,
        )
        if self.failures >= self.opts.max_failures:
            entries = [self.raw[s] for s in self.buffer.stream_ids() if s in self.raw]
            self._dead_letter(entries, f"poison window: {exc}", "poison")
            self.failures = 0
        self._reset()
        self.stop.wait(min(MAX_BACKOFF_S, 0.5 * 2**self.failures))

    def _reset(self) -> None:
        self.buffer.clear()
        self.raw.clear()
        self.consumer.restart_pending()

    # -- recovery and retention ----------------------------------------------------
    def recover(self) -> None:
        """Finish the ledger's last window if it is not marked finished; drop snapshots
        no ledger line committed."""
        records = ledger.records(self.root)
        committed = {r["version"] for r in records if r.get("version")}
        current = self._pointer()
        newest = max((int(v[1:]) for v in committed | {current or "v0"}), default=0)
        for version in list_versions(self.root):
            if int(version[1:]) > newest and version not in committed and version != current:
                log.warning("removing %s: written by a window that never committed", version)
                # Here only: a version is uploaded after its commit point, never before.
                shutil.rmtree(self.root / version, ignore_errors=True)
        self._reset()
        self.unfinished = None
        if not records:
            return
        last = records[-1]
        self.last = _summary(last)
        self.window_no = int(last["window"]) + 1
        done = ledger.finished(self.root)
        if done is None or done < int(last["window"]):
            log.info("finishing window %s (committed before a restart)", last["window"])
            self.unfinished = Unfinished(last, ledger.detail(self.root, last), fresh=False)

    def _tidy(self) -> None:
        """Retention after a finished window: snapshots, stream, ledger, details."""
        versions = sorted(
            set(self.store.versions()) | set(list_versions(self.root)), key=lambda v: int(v[1:])
        )
        # A store that does not answer raises here: no retention this time, rather than
        # one blind to the current version (a rollback may point at an old one).
        try:
            current = self.store.pointer()
        except SnapshotError:
            current = None
        removed = []
        for version in versions[: max(0, len(versions) - self.opts.keep)]:
            if version != current:
                self._remove(version)
                removed.append(version)
                log.info("retention: removed %s (keeping %d)", version, self.opts.keep)
        if removed:  # their online metrics go with them
            fields = [f"{v}|{n}" for v in removed for n in ("n", "hits", "ndcg")]
            self.redis.hdel(self.keys.online, *fields)
        self.consumer.trim()
        ledger.rotate(self.root, self.opts.ledger_lines)
        ledger.prune_details(self.root, self.opts.window_details)

    def _remove(self, version: str) -> None:
        """From the store, and the copy written here (the same one for a local store)."""
        self.store.delete(version)
        shutil.rmtree(self.root / version, ignore_errors=True)

    # -- state ---------------------------------------------------------------------
    def _pointer(self) -> str | None:
        """What the store's pointer names; None if it names nothing usable (a
        promotion repairs it)."""
        try:
            return self.store.pointer()
        except (OSError, ValueError, SnapshotError) as exc:
            log.warning("snapshot pointer unreadable: %s", exc)
            return None

    def serving(self) -> Snapshot:
        """The current snapshot; while it cannot be read, the last good one."""
        last_good = self._serving
        try:
            version = self.store.pointer()
        except (OSError, ValueError, SnapshotError) as exc:  # e.g. CURRENT names ../x
            if last_good is None:
                raise SnapshotUnavailable(f"snapshot pointer unreadable: {exc}") from exc
            log.warning("snapshot pointer unreadable (%s): training on %s", exc, last_good.version)
            return last_good
        if version is None:
            raise SnapshotUnavailable(
                f"no current snapshot in {self.store.url}: run xsmoe bootstrap"
            )
        if last_good is not None and last_good.version == version:
            return last_good
        tried = self._refused.get(version)
        if tried is None or time.monotonic() - tried > RETRY_REFUSED_S:
            try:
                self._serving = load_snapshot(self.store.fetch(version, self.root))
                self._refused.pop(version, None)
                return self._serving
            except Exception as exc:
                self._refused[version] = time.monotonic()
                log.error("current snapshot %s unreadable: %s", version, exc)
        if last_good is None:
            raise SnapshotUnavailable(f"current snapshot {version} unreadable")
        log.warning("training on %s, the last good snapshot (not %s)", last_good.version, version)
        return last_good

    def feature_store(self, serving: Snapshot) -> FeatureStore:
        if self._store is None:
            dataset = str(serving.manifest.get("source", {}).get("dataset") or self.opts.dataset)
            path = self.opts.features_dir or self.settings.features_dir(dataset)
            try:
                store = FeatureStore.open(path)
            except Exception as exc:
                raise SnapshotUnavailable(f"feature store {path} unreadable: {exc}") from exc
            for m, spec in serving.feature_specs.items():
                have = store.specs.get(m)
                if have is None or have.as_json() != spec.as_json():
                    raise SnapshotUnavailable(
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
                pipe.expire(self.keys.context(user), self.opts.context_ttl_seconds)
            pipe.execute()

    def _add_online(self, online: dict[str, Any]) -> None:
        version, n = online["version"], float(online["cases"])
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrbyfloat(self.keys.online, f"{version}|n", n)
            pipe.hincrbyfloat(self.keys.online, f"{version}|hits", float(online["hr@10"]) * n)
            pipe.hincrbyfloat(self.keys.online, f"{version}|ndcg", float(online["ndcg@10"]) * n)
            pipe.execute()


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    """What the status hash says of a committed window."""
    return {k: record.get(k) for k in ("window", "outcome", "reason", "version", "created_at")}


def _range(stream_ids: list[str]) -> list[str]:
    """First and last id of a window's stream ids (the buffer hands them over sorted)."""
    return [stream_ids[0], stream_ids[-1]] if stream_ids else []


def _table(store: FeatureStore, serving: Snapshot) -> ItemTable:
    """The modalities the model reads, mapped from the store (no copy into RAM)."""
    return ItemTable.from_store(store, serving.model.config.shapes)
