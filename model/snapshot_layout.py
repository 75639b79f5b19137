"""A snapshot root's layout: version directories (v000001, ...), the CURRENT pointer,
the manifest's name and file checksums. No torch or FAISS here, so listing versions
and moving the pointer (the CLI, the snapshot store) start fast.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from xsmoe.model.errors import ModelError

FORMAT_VERSION = 1
POINTER = "CURRENT"
MANIFEST = "manifest.json"
FILES = (
    "config.json",
    "weights.safetensors",
    "items.json",
    "embeddings.safetensors",
    "index.faiss",
)
_VERSION_RE = re.compile(r"^v(\d{6,})$")
EXACT_INDEX, IVF_INDEX = "flat", "ivf_flat"  # the manifest's index kinds (model.ann)


def index_entry(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest's `index` entry; snapshots written before it had exact indexes."""
    return {"kind": EXACT_INDEX, "params": {}, **(manifest.get("index") or {})}


class SnapshotError(ModelError):
    """A snapshot is missing, corrupt or incompatible; says which and why."""


def version_name(number: int) -> str:
    return f"v{number:06d}"


def list_versions(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    found = [p.name for p in root.iterdir() if p.is_dir() and _VERSION_RE.match(p.name)]
    return sorted(found, key=lambda name: int(name[1:]))


def next_version(root: Path) -> str:
    versions = list_versions(root)
    return version_name(int(versions[-1][1:]) + 1 if versions else 1)


def check_version(name: str, where: str) -> str:
    """`name` if it names a version directory (v000001, ...); SnapshotError if not, so a
    pointer can never lead outside the snapshot root (`../x`, `/etc`)."""
    if not _VERSION_RE.match(name):
        shown = name if len(name) <= 64 else name[:64] + "..."
        raise SnapshotError(f"{where} names {shown!r}, not a version like {version_name(1)}")
    return name


def current_version(root: Path) -> str | None:
    """The version CURRENT names (None without a pointer); SnapshotError if it names
    anything but a version."""
    pointer = root / POINTER
    if not pointer.is_file():
        return None
    name = pointer.read_text().strip()
    return check_version(name, str(pointer)) if name else None


def set_current(root: Path, version: str) -> None:
    """Move the pointer (atomic replace, fsynced); the snapshot must exist."""
    check_version(version, f"the new {POINTER} in {root}")
    if not (root / version / MANIFEST).is_file():
        raise SnapshotError(f"cannot point at {version}: no snapshot at {root / version}")
    tmp = root / f".{POINTER}.tmp"
    with tmp.open("w") as fh:
        fh.write(version + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / POINTER)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
