"""Snapshot stores, opened from XSMOE_SNAPSHOT_STORE: a directory (the default: the
snapshot directory itself, today's layout) or s3://bucket/prefix."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from xsmoe.common.settings import Settings
from xsmoe.common.snapshot_store.base import SnapshotStore, StoreError
from xsmoe.common.snapshot_store.local import LocalStore
from xsmoe.model.snapshot_layout import list_versions, version_name

__all__ = [
    "LocalStore",
    "SnapshotStore",
    "StoreError",
    "next_version",
    "open_store",
    "serving_dir",
]


def open_store(settings: Settings, url: str | None = None) -> SnapshotStore:
    """The store `url` names (default XSMOE_SNAPSHOT_STORE, else the snapshot directory)."""
    url = url or settings.snapshot_store
    if not url:
        return LocalStore(settings.snapshots)
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"XSMOE_SNAPSHOT_STORE={url!r} names no bucket (s3://bucket/prefix)")
        from xsmoe.common.snapshot_store.s3 import S3Store, client_for  # boto3 only when used

        return S3Store(client_for(settings.s3), parsed.netloc, parsed.path)
    if parsed.scheme in ("", "file"):
        return LocalStore(Path(parsed.path if parsed.scheme else url))
    raise ValueError(
        f"XSMOE_SNAPSHOT_STORE={url!r}: expected a directory, file:///dir or s3://bucket/prefix"
    )


def serving_dir(store: SnapshotStore, settings: Settings) -> Path:
    """Where a replica loads versions from: a local store's own root (read in place),
    else the replica's cache directory."""
    return store.root if isinstance(store, LocalStore) else settings.snapshot_cache


def next_version(local: Path, store: SnapshotStore) -> str:
    """After every version written in `local` and held by the store: a writer on a
    fresh disk must never reuse a name the store already holds."""
    known = set(list_versions(local)) | set(store.versions())
    return version_name(max((int(v[1:]) for v in known), default=0) + 1)
