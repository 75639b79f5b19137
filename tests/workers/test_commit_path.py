"""The worker's commit path under faults injected at the exact point they hurt: Redis
gone between the commit point and the ack, poison entries, rollbacks, training that
fails now and then, a current snapshot that cannot be read."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deployment import planted_events, worker_settings_for
from xsmoe.common import ledger
from xsmoe.common.events import FeedbackEvent, stream_fields
from xsmoe.common.keys import Keys
from xsmoe.model.snapshot import current_version, list_versions, set_current
from xsmoe.redis_server import EmbeddedRedis
from xsmoe.service.settings import ServiceSettings
from xsmoe.workers import worker as worker_module
from xsmoe.workers.leader import LeaderLock
from xsmoe.workers.redis_client import connect
from xsmoe.workers.worker import SnapshotUnavailable, Worker


def wait_for(check: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def post(url: str, prefix: str, events: list[dict[str, str]]) -> None:
    r = connect(url)
    for e in events:
        r.xadd(Keys(prefix).feedback, stream_fields(FeedbackEvent.model_validate(e)))  # type: ignore[arg-type]
    r.close()


def steps_until(worker: Worker, done: Callable[[], object], limit: int = 400) -> None:
    """Drive the worker by hand (no thread): each fault lands where the test puts it."""
    for _ in range(limit):
        if done():
            return
        worker.step()
    raise AssertionError("worker did not get there")


@pytest.fixture
def threaded() -> Iterator[Callable[[Worker], None]]:
    started: list[tuple[Worker, threading.Thread]] = []

    def start(worker: Worker) -> None:
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        started.append((worker, thread))

    yield start
    for worker, thread in started:
        worker.stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "worker did not stop"


def test_redis_lost_between_the_commit_point_and_the_ack_trains_nothing_twice(
    settings: ServiceSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    threaded: Callable[[Worker], None],
) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persist=True).start()
    servers = [server]
    own = settings.model_copy(update={"redis_url": server.url})
    root = own.snapshots
    real_append = ledger.append
    dropped = threading.Event()

    def append_then_lose_redis(where: Path, record: dict[str, Any]) -> None:
        real_append(where, record)  # committed ...
        if record["window"] == 0 and not dropped.is_set():
            dropped.set()
            servers[-1].stop()  # ... and Redis is gone before the pointer or the acks

            def back() -> None:
                time.sleep(1.0)
                servers.append(
                    EmbeddedRedis(tmp_path / "redis", port=server.port, persist=True).start()
                )

            threading.Thread(target=back, daemon=True).start()

    monkeypatch.setattr(ledger, "append", append_then_lose_redis)
    try:
        post(own.redis_url, own.redis_prefix, planted_events(n_users=12, length=10))
        worker = Worker(worker_settings_for(own, window_events=120, epsilon=1.0))
        threaded(worker)
        wait_for(lambda: ledger.finished(root) == 0, timeout=120)
        assert dropped.is_set() and len(servers) == 2
        post(own.redis_url, own.redis_prefix, planted_events(n_users=12, length=10, seed=1))
        wait_for(lambda: ledger.finished(root) == 1, timeout=120)
        records = ledger.records(root)
        assert [r["window"] for r in records] == [0, 1]
        trained = [set(ledger.detail(root, r)["event_ids"]) for r in records]
        assert len(trained[0]) == len(trained[1]) == 120 and not trained[0] & trained[1]
        assert worker.consumer.pending_count() == 0
        assert current_version(root) == records[1]["version"]
        db = connect(own.redis_url)
        assert db.xlen(own.keys.dead_letter) == 0
        # consumed entries are trimmed by the tidy-up that follows the finish
        wait_for(lambda: sum(db.xlen(s) for s in own.keys.streams) == 0, timeout=30)
    finally:
        for s in servers:
            s.stop()


def test_a_poison_entry_is_dead_lettered_and_the_worker_goes_on(
    settings: ServiceSettings,
) -> None:
    keys = settings.keys
    db = connect(settings.redis_url)
    db.xadd(keys.feedback, {b"user_id": b"\xff\xfeu", b"item_id": b"m1", b"type": b"click"})
    post(settings.redis_url, settings.redis_prefix, planted_events(n_users=12, length=10))
    worker = Worker(worker_settings_for(settings, window_events=120, epsilon=1.0))
    steps_until(worker, lambda: ledger.finished(settings.snapshots) == 0)
    worker.lock.release()
    restarted = Worker(worker_settings_for(settings, window_events=120, epsilon=1.0))
    for _ in range(5):  # a restart must not meet the entry again (it was acked)
        restarted.step()
    restarted.lock.release()
    dead = db.xrange(keys.dead_letter)
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields[b"user_id"] == b"\xff\xfeu"  # kept as it came, for a person to look at
    assert fields[b"reason"].startswith(b"malformed entry: undecodable bytes")
    assert ledger.records(settings.snapshots)[0]["events"] == 120


def test_an_operators_rollback_survives_a_worker_restart(settings: ServiceSettings) -> None:
    root = settings.snapshots
    post(settings.redis_url, settings.redis_prefix, planted_events(n_users=12, length=10))
    worker = Worker(worker_settings_for(settings, window_events=120, epsilon=1.0))
    steps_until(worker, lambda: ledger.finished(root) == 0)
    promoted = ledger.records(root)[0]["version"]
    assert current_version(root) == promoted != "v000001"
    worker.lock.release()
    set_current(root, "v000001")  # the operator rolls back
    restarted = Worker(worker_settings_for(settings, window_events=120, epsilon=1.0))
    restarted.step()  # takes the lock and recovers
    assert restarted.lock.held and restarted.unfinished is None
    assert current_version(root) == "v000001"
    restarted.lock.release()


def test_a_committed_window_left_unfinished_is_finished_on_restart(
    settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = settings.snapshots
    post(settings.redis_url, settings.redis_prefix, planted_events(n_users=12, length=10))
    worker = Worker(worker_settings_for(settings, window_events=120, epsilon=1.0))

    def crash(todo: object) -> None:
        raise KeyboardInterrupt  # the process dies right after the commit point

    monkeypatch.setattr(worker, "finish", crash)
    with pytest.raises(KeyboardInterrupt):
        steps_until(worker, lambda: False)
    assert ledger.finished(root) is None and current_version(root) == "v000001"
    restarted = Worker(worker_settings_for(settings, window_events=120, epsilon=1.0))
    restarted.step()
    assert current_version(root) == ledger.records(root)[0]["version"]
    assert ledger.finished(root) == 0 and restarted.consumer.pending_count() == 0
    restarted.lock.release()


def test_failures_spread_over_windows_never_dead_letter(
    settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = worker_module.train_and_gate
    calls = {"n": 0}

    def fails_first_try_of_each_window(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] % 2 == 1:
            raise RuntimeError("transient training failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(worker_module, "train_and_gate", fails_first_try_of_each_window)
    opts = {"window_events": 120, "epsilon": 1.0, "max_failures": 2}
    worker = Worker(worker_settings_for(settings, **opts))
    monkeypatch.setattr(worker.stop, "wait", lambda timeout=None: False)  # no back-off sleeps
    for window in range(3):
        post(
            settings.redis_url,
            settings.redis_prefix,
            planted_events(n_users=12, length=10, seed=window),
        )
        steps_until(worker, lambda w=window: ledger.finished(settings.snapshots) == w)  # type: ignore[misc]
    db = connect(settings.redis_url)
    assert db.xlen(settings.keys.dead_letter) == 0
    assert [r["events"] for r in ledger.records(settings.snapshots)] == [120, 120, 120]
    assert calls["n"] == 6
    worker.lock.release()


def _corrupt_copy(root: Path, version: str, name: str) -> None:
    shutil.copytree(root / version, root / name)
    for weights in (root / name).glob("*.safetensors"):
        weights.write_bytes(b"not a safetensors file")


def test_an_unreadable_current_snapshot_leaves_events_pending(
    settings: ServiceSettings,
) -> None:
    root = settings.snapshots
    keys = settings.keys
    db = connect(settings.redis_url)
    _corrupt_copy(root, "v000001", "v000002")
    set_current(root, "v000002")
    post(settings.redis_url, settings.redis_prefix, planted_events(n_users=12, length=10))
    worker = Worker(worker_settings_for(settings, window_events=120, epsilon=1.0, max_failures=1))
    for _ in range(5):  # a fresh worker has no last good snapshot: it waits, it does not drop
        with pytest.raises(SnapshotUnavailable):
            steps_until(worker, lambda: False)
    assert db.xlen(keys.dead_letter) == 0 and worker.consumer.pending_count() == 120
    set_current(root, "v000001")  # the operator repairs the pointer
    steps_until(worker, lambda: ledger.finished(root) == 0)
    assert ledger.records(root)[0]["events"] == 120 and worker.consumer.pending_count() == 0
    worker.lock.release()


def test_a_bad_current_while_feedback_flows_trains_on_the_last_good_snapshot(
    settings: ServiceSettings,
) -> None:
    root = settings.snapshots
    db = connect(settings.redis_url)
    worker = Worker(worker_settings_for(settings, window_events=120, epsilon=1.0, max_failures=1))
    post(settings.redis_url, settings.redis_prefix, planted_events(n_users=12, length=10))
    steps_until(worker, lambda: ledger.finished(root) == 0)
    good = current_version(root)
    assert good is not None
    bad = f"v{int(good[1:]) + 1:06d}"
    _corrupt_copy(root, good, bad)
    set_current(root, bad)  # e.g. a broken hand-made snapshot promoted by mistake
    post(settings.redis_url, settings.redis_prefix, planted_events(12, 10, seed=1))
    steps_until(worker, lambda: ledger.finished(root) == 1)
    record = ledger.records(root)[1]
    assert record["parent"] == good and record["events"] == 120
    (root / "CURRENT").write_text("../elsewhere\n")  # a pointer that names no version
    post(settings.redis_url, settings.redis_prefix, planted_events(12, 10, seed=2))
    steps_until(worker, lambda: ledger.finished(root) == 2)
    assert ledger.records(root)[2]["events"] == 120
    assert db.xlen(settings.keys.dead_letter) == 0
    worker.lock.release()


def test_a_restarted_worker_takes_its_own_lock_back_at_once(settings: ServiceSettings) -> None:
    client = connect(settings.redis_url)
    keys = settings.keys
    old = LeaderLock(client, keys.leader, "w1", ttl_ms=60_000)
    assert old.acquire()
    old._stop.set()  # the old process died: it no longer renews, the lock has 60 s left
    other = LeaderLock(client, keys.leader, "w2", ttl_ms=60_000)
    assert not other.acquire()  # another name still waits for the expiry
    new = LeaderLock(client, keys.leader, "w1", ttl_ms=60_000)
    assert new.acquire()  # the same name: at once
    # The old token is fenced off: it can neither renew nor move the pointer.
    assert not old.renew()
    assert not old.publish(keys.snapshot_pointer, keys.snapshot_channel, "v000009")
    assert client.get(keys.snapshot_pointer) is None
    assert new.publish(keys.snapshot_pointer, keys.snapshot_channel, "v000002")
    assert client.get(keys.snapshot_pointer) == b"v000002"
    new.release()


def test_retention_bounds_redis_and_the_ledger(settings: ServiceSettings) -> None:
    root = settings.snapshots
    keys = settings.keys
    db = connect(settings.redis_url)
    opts = {"window_events": 60, "epsilon": 1.0, "keep": 2, "ledger_lines": 10}
    worker = Worker(worker_settings_for(settings, **opts, window_details=3))
    for window in range(12):
        post(settings.redis_url, settings.redis_prefix, planted_events(6, 10, seed=window))
        steps_until(worker, lambda w=window: ledger.finished(root) == w)  # type: ignore[misc]
    assert len(list_versions(root)) <= 2
    online_versions = {f.decode().partition("|")[0] for f in db.hkeys(keys.online)}
    assert online_versions <= set(list_versions(root))  # metrics of deleted versions go
    assert sum(db.xlen(s) for s in keys.streams) == 0
    assert db.ttl(keys.context("u0")) > 0
    assert len(list((root / ledger.DETAILS).glob("*.json"))) == 3
    assert (root / ledger.ROTATED).is_file()
    assert [r["window"] for r in ledger.records(root)] == list(range(12))
    assert [r["window"] for r in ledger.tail(root, 4)] == [8, 9, 10, 11]
    worker.lock.release()


def test_an_unexpected_error_is_logged_and_the_worker_goes_on(
    settings: ServiceSettings,
    monkeypatch: pytest.MonkeyPatch,
    threaded: Callable[[Worker], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = Worker(worker_settings_for(settings, window_events=120, epsilon=1.0))
    real_read = worker.consumer.read
    calls = {"n": 0}

    def read_failing_once(count: int) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValueError("a bug nobody foresaw")
        return real_read(count)

    monkeypatch.setattr(worker.consumer, "read", read_failing_once)
    post(settings.redis_url, settings.redis_prefix, planted_events(n_users=12, length=10))
    threaded(worker)
    wait_for(lambda: ledger.finished(settings.snapshots) == 0, timeout=120)
    # The window may be read whole before the failing read comes: wait until the
    # worker has read again after it (it went on), then look at the log.
    wait_for(lambda: calls["n"] >= 3, timeout=60)
    assert "a bug nobody foresaw" in caplog.text
    assert ledger.records(settings.snapshots)[0]["events"] == 120


def test_stopping_mid_training_abandons_the_window_and_leaves_it_pending(
    settings: ServiceSettings,
    monkeypatch: pytest.MonkeyPatch,
    threaded: Callable[[Worker], None],
) -> None:
    worker = Worker(worker_settings_for(settings, window_events=120, epsilon=1.0))
    real = worker_module.train_and_gate
    entered = threading.Event()

    def stop_requested_during_training(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        worker.stop.set()  # SIGTERM arrives while the window trains
        return real(*args, **kwargs)

    monkeypatch.setattr(worker_module, "train_and_gate", stop_requested_during_training)
    post(settings.redis_url, settings.redis_prefix, planted_events(n_users=12, length=10))
    threaded(worker)  # the fixture asserts the thread ends
    assert entered.wait(timeout=60)
    wait_for(lambda: not worker.lock.held, timeout=30)
    assert ledger.records(settings.snapshots) == []  # nothing half-trained is committed
    assert worker.consumer.pending_count() == 120  # a restart trains the window
