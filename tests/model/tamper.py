"""Snapshots that pass the integrity check but say something else, as a buggy or
hostile writer would make them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def rewrite_snapshot_file(path: Path, name: str, data: bytes) -> None:
    """Replace one file of a saved snapshot, and its checksum in the manifest."""
    (path / name).write_bytes(data)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["checksums"][name] = hashlib.sha256(data).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))


def rewrite_config(path: Path, **recommender: object) -> None:
    """Change fields of the recorded architecture (config.json's `recommender`)."""
    config = json.loads((path / "config.json").read_text())
    config["recommender"].update(recommender)
    rewrite_snapshot_file(path, "config.json", json.dumps(config).encode())
