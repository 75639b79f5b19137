"""The snapshot store: where versions are published, and where replicas fetch them.

A version is a directory written by `model.snapshot.save_snapshot`. Publishing is
blob-first: every file of the version, then its file list (name, sha256, size),
then the pointer. A reader that follows the pointer therefore always finds a
complete version, and a version without its file list is not listed at all.
"""

from __future__ import annotations

import logging
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from xsmoe.model.snapshot_layout import SnapshotError, check_version, list_versions, sha256_of

log = logging.getLogger(__name__)
TMP_PREFIX = ".tmp-"


class StoreError(OSError):
    """The store could not be reached or refused a request: transient, try again.
    An OSError, so every caller that already survives a flaky disk survives it too."""


def describe_files(path: Path) -> dict[str, dict[str, Any]]:
    """name -> {sha256, size} of every file of the version directory `path`."""
    if not path.is_dir():
        raise SnapshotError(f"no snapshot at {path}")
    return {
        p.name: {"sha256": sha256_of(p), "size": p.stat().st_size}
        for p in sorted(path.iterdir())
        if p.is_file()
    }


def check_file_name(name: str, where: str) -> str:
    """A file list names plain files in the version directory, never a path out of it."""
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        raise SnapshotError(f"{where} lists {name[:64]!r}, not a plain file name")
    return name


class SnapshotStore(ABC):
    url: str  # where it is, for messages and logs (never holds a secret)

    @abstractmethod
    def put(self, path: Path) -> None:
        """Upload the version directory `path` (its name is the version): blobs first,
        the file list last. A version already complete in the store is left alone."""

    @abstractmethod
    def set_pointer(self, version: str) -> None:
        """Point at `version`; SnapshotError if the store holds no complete `version`."""

    @abstractmethod
    def pointer(self) -> str | None:
        """The version the store's pointer names (None without a pointer)."""

    @abstractmethod
    def versions(self) -> list[str]:
        """Complete versions, oldest first."""

    @abstractmethod
    def manifest(self, version: str) -> dict[str, Any]:
        """The version's manifest.json (lineage, gate, experts, metrics)."""

    @abstractmethod
    def fetch(self, version: str, cache: Path) -> Path:
        """A local directory holding `version`, verified against the store's file list."""

    @abstractmethod
    def delete(self, version: str) -> None:
        """Remove `version` (retention); unlisted first, so no reader picks it meanwhile."""

    def publish(self, path: Path) -> None:
        """Upload the version, then move the pointer to it (the pointer last)."""
        self.put(path)
        self.set_pointer(path.name)

    def tidy_cache(self, cache: Path, keep: set[str]) -> None:
        """Drop fetched versions other than `keep` (and leftovers of failed fetches).
        A store that serves versions in place keeps no cache: nothing to drop."""
        if not cache.is_dir():
            return
        versions = set(list_versions(cache))
        for entry in cache.iterdir():
            stale = entry.name.startswith(TMP_PREFIX) or (
                entry.name in versions and entry.name not in keep
            )
            if entry.is_dir() and stale:
                shutil.rmtree(entry, ignore_errors=True)
                log.info("snapshot cache: removed %s", entry.name)

    def _check(self, version: str) -> str:
        return check_version(version, f"a version for {self.url}")
