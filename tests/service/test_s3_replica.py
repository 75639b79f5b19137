"""Replicas on disks of their own, following snapshots through an S3 store (a real
SeaweedFS server): the Redis pointer leads, the store's pointer is the backstop, and
a store outage delays a version instead of refusing it for good."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.deployment import announce_pointer, planted_events, publish_snapshot, worker_settings_for
from tests.seaweed import SeaweedS3
from tests.service.test_swap import _refused, _version, wait_for
from xsmoe.common import ledger
from xsmoe.common.events import FeedbackEvent, stream_fields
from xsmoe.common.snapshot_store import StoreError, open_store
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings
from xsmoe.workers.redis_client import connect
from xsmoe.workers.worker import Worker

pytestmark = pytest.mark.timeout(240)


def on_s3(settings: ServiceSettings, server: SeaweedS3) -> ServiceSettings:
    """The deployment with its snapshots published to a fresh prefix of the server,
    v000001 (written locally by the fixture) published there as bootstrap does."""
    shared = settings.model_copy(
        update={"snapshot_store": server.store_url(), "s3": server.settings()}
    )
    open_store(shared).publish(settings.snapshots / "v000001")
    return shared


def replica_of(
    shared: ServiceSettings, disk: Path, retry_max_seconds: float = 60.0
) -> ServiceSettings:
    """An API replica with a data directory of its own (nothing of the worker's)."""
    serving = shared.serving.model_copy(update={"retry_max_seconds": retry_max_seconds})
    return shared.model_copy(
        update={"data_dir": disk, "snapshot_dir": disk / "snapshots", "serving": serving}
    )


def test_a_replica_with_its_own_disk_serves_what_the_worker_publishes_to_s3(
    settings: ServiceSettings, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    shared = on_s3(settings, s3_server)
    replica = replica_of(shared, tmp_path / "replica")
    with TestClient(create_app(replica)) as client:
        assert _version(client) == "v000001"  # no Redis pointer yet: the store's
        feed = connect(shared.redis_url)
        for event in planted_events(n_users=12, length=10):
            fields = stream_fields(FeedbackEvent.model_validate(event))
            feed.xadd(shared.keys.feedback, fields)  # type: ignore[arg-type]
        worker = Worker(worker_settings_for(shared, window_events=120, epsilon=1.0))
        try:
            for _ in range(400):
                if ledger.finished(settings.snapshots) == 0:
                    break
                worker.step()
        finally:
            worker.lock.release()
        record = ledger.records(settings.snapshots)[0]
        assert record["outcome"] == "promoted"
        version = str(record["version"])
        assert open_store(shared).pointer() == version
        wait_for(lambda: _version(client) == version, timeout=30)
    assert (replica.snapshot_cache / version / "manifest.json").is_file()
    assert not (tmp_path / "replica" / "snapshots").exists()  # nothing but its cache


def test_a_store_outage_delays_a_version_and_the_replica_serves_it_once_the_store_is_back(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    root = settings.snapshots
    with SeaweedS3(tmp_path / "s3") as server:
        shared = on_s3(settings, server)
        store = open_store(shared)
        replica = replica_of(shared, tmp_path / "replica", retry_max_seconds=1.0)
        with TestClient(create_app(replica)) as client:
            assert _version(client) == "v000001"
            second = publish_snapshot(root, settings, seed=1, make_current=False)
            store.put(root / second)
            server.stop()
            with pytest.raises(StoreError):  # bounded: one try, short timeouts
                store.publish(root / second)
            announce_pointer(shared, second)  # named, but nobody can fetch it now
            wait_for(lambda: second in _refused(client), timeout=30)
            shown = _refused(client)[second]
            assert "unavailable" in shown and "127.0.0.1" not in shown  # no host named
            assert _version(client) == "v000001"
            r = client.post("/v1/recommendations", json={"item_ids": ["m1"]})
            assert r.status_code == 200 and r.json()["model_version"] == "v000001"
            server.start()  # same ports, same data
            wait_for(lambda: _version(client) == second, timeout=60)
            assert second not in _refused(client)


def test_the_redis_pointer_wins_over_a_stale_store_pointer_which_is_the_backstop(
    settings: ServiceSettings, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    shared = on_s3(settings, s3_server)
    store = open_store(shared)
    second = publish_snapshot(settings.snapshots, settings, seed=1, make_current=False)
    store.put(settings.snapshots / second)  # in the store; its pointer still names v000001
    with TestClient(create_app(replica_of(shared, tmp_path / "replica"))) as client:
        assert _version(client) == "v000001"
        announce_pointer(shared, second)
        wait_for(lambda: _version(client) == second)
        time.sleep(0.5)  # several polls, each also reading the stale store pointer
        assert _version(client) == second and store.pointer() == "v000001"
        connect(shared.redis_url).delete(shared.keys.snapshot_pointer)
        wait_for(lambda: _version(client) == "v000001")  # no Redis pointer: the store's
