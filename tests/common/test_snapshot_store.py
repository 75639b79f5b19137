"""The snapshot stores against real backends: a directory, and SeaweedFS over S3."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from tests.deployment import publish_snapshot
from tests.seaweed import SeaweedS3
from xsmoe.common.snapshot_store import LocalStore, StoreError, next_version, open_store
from xsmoe.common.snapshot_store.s3 import FILE_LIST, S3Store
from xsmoe.model.snapshot import POINTER, SnapshotError, current_version, load_snapshot
from xsmoe.service.settings import ServiceSettings

pytestmark = pytest.mark.timeout(120)


def s3_store(settings: ServiceSettings, server: SeaweedS3) -> S3Store:
    s3 = settings.model_copy(update={"snapshot_store": server.store_url(), "s3": server.settings()})
    store = open_store(s3)
    assert isinstance(store, S3Store)
    return store


def test_s3_round_trip_publish_list_pointer_fetch_delete(
    settings: ServiceSettings, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    root = settings.snapshots  # v000001 written and current here
    store = s3_store(settings, s3_server)
    assert store.versions() == [] and store.pointer() is None
    store.publish(root / "v000001")
    store.put(root / "v000001")  # a retried publish: nothing to do
    assert store.versions() == ["v000001"] and store.pointer() == "v000001"
    assert store.manifest("v000001")["version"] == "v000001"
    cache = tmp_path / "cache"
    fetched = store.fetch("v000001", cache)
    assert fetched == cache / "v000001" and store.fetch("v000001", cache) == fetched
    assert load_snapshot(fetched).item_ids == load_snapshot(root / "v000001").item_ids
    assert [p.name for p in cache.iterdir()] == ["v000001"]  # no temporary left behind
    assert next_version(tmp_path / "empty", store) == "v000002"  # a fresh disk reuses no name
    # The store's copy is corrupted: a fresh cache refuses it and keeps nothing of it.
    store.client.put_object(
        Bucket=store.bucket, Key=store._key("v000001", "index.faiss"), Body=b"x"
    )
    with pytest.raises(SnapshotError, match="checksum mismatch for index.faiss"):
        store.fetch("v000001", tmp_path / "fresh")
    assert list((tmp_path / "fresh").iterdir()) == []
    # Another snapshot under a name the store holds is never written over it.
    other = publish_snapshot(tmp_path / "elsewhere", settings, seed=3, make_current=False)
    shutil.move(tmp_path / "elsewhere" / other, tmp_path / "v000001")
    with pytest.raises(SnapshotError, match="already holds a different v000001"):
        store.put(tmp_path / "v000001")
    store.delete("v000001")
    assert store.versions() == []
    with pytest.raises(SnapshotError, match="holds no complete v000001"):
        store.fetch("v000001", tmp_path / "again")
    with pytest.raises(SnapshotError, match="cannot point at v000001"):
        store.set_pointer("v000001")
    store.client.put_object(Bucket=store.bucket, Key=store._key(POINTER), Body=b"../../etc\n")
    with pytest.raises(SnapshotError, match="not a version"):
        store.pointer()


class Killed(BaseException):
    """Stands for the process dying: nothing below it gets to run."""


class DiesBeforeTheFileList(S3Store):
    """The publishing process dies between the blobs and the file list."""

    def _put_bytes(self, key: str, body: bytes) -> None:
        if key.endswith(FILE_LIST):
            raise Killed
        super()._put_bytes(key, body)


def test_the_pointer_moves_last_a_reader_never_meets_an_incomplete_version(
    settings: ServiceSettings, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    root = settings.snapshots
    store = s3_store(settings, s3_server)
    store.publish(root / "v000001")
    second = publish_snapshot(root, settings, seed=1, make_current=False)
    dying = DiesBeforeTheFileList(store.client, store.bucket, store.prefix)
    with pytest.raises(Killed):
        dying.publish(root / second)
    assert store.pointer() == "v000001" and store.versions() == ["v000001"]
    with pytest.raises(SnapshotError):
        store.set_pointer(second)  # blobs without their file list are no version
    # A reader polling throughout a publish only ever meets complete versions.
    seen: list[tuple[str | None, bool]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            version = store.pointer()
            seen.append((version, version is None or version in store.versions()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        store.publish(root / second)  # the retry after the crash completes it
    finally:
        stop.set()
        reader.join(timeout=30)
    assert store.pointer() == second and store.versions() == ["v000001", second]
    assert seen and all(complete for _, complete in seen), seen


def test_s3_store_unreachable_is_a_store_error_within_its_timeouts(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    from tests.seaweed import SeaweedS3 as Server

    down = Server(tmp_path / "never-started")  # its ports are free: nothing answers
    store = s3_store(settings, down)
    for call in (store.pointer, store.versions, lambda: store.put(settings.snapshots / "v000001")):
        with pytest.raises(StoreError, match="failed"):
            call()


def test_the_local_store_is_the_snapshot_directory_as_before(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    root = settings.snapshots
    store = open_store(settings)
    assert isinstance(store, LocalStore) and store.root == root
    assert store.pointer() == "v000001" and store.versions() == ["v000001"]
    assert store.fetch("v000001", tmp_path / "unused") == root / "v000001"  # read in place
    second = publish_snapshot(root, settings, seed=1, make_current=False)
    store.publish(root / second)
    assert current_version(root) == second
    elsewhere = open_store(settings, str(tmp_path / "published"))
    elsewhere.publish(root / second)  # a store of its own: copied over, then pointed at
    assert elsewhere.versions() == [second] and elsewhere.pointer() == second
    store.delete("v000001")
    assert store.versions() == [second]
