"""The local store: versions as directories under one root plus a CURRENT file (a
disk or a volume every process mounts). Replicas read versions in place."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from xsmoe.common.snapshot_store.base import TMP_PREFIX, SnapshotStore
from xsmoe.model.snapshot_layout import MANIFEST, current_version, list_versions, set_current


class LocalStore(SnapshotStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def put(self, path: Path) -> None:
        target = self.root / self._check(path.name)
        if path.resolve() == target.resolve() or (target / MANIFEST).is_file():
            return  # written here by save_snapshot (atomically), or already copied
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{path.name}-", dir=self.root))
        try:
            shutil.copytree(path, tmp, dirs_exist_ok=True)
            os.rename(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def set_pointer(self, version: str) -> None:
        set_current(self.root, version)

    def pointer(self) -> str | None:
        return current_version(self.root)

    def versions(self) -> list[str]:
        return list_versions(self.root)

    def manifest(self, version: str) -> dict[str, Any]:
        manifest: dict[str, Any] = json.loads(
            (self.root / self._check(version) / MANIFEST).read_text()
        )
        return manifest

    def fetch(self, version: str, cache: Path) -> Path:
        # Read in place: load_snapshot verifies every checksum of the manifest.
        return self.root / self._check(version)

    def delete(self, version: str) -> None:
        shutil.rmtree(self.root / self._check(version), ignore_errors=True)

    def tidy_cache(self, cache: Path, keep: set[str]) -> None:
        """No cache: the versions here are the store itself."""
