"""On-disk item feature store: per modality, cached multi-layer features + presence.

Layout of a store directory:

    meta.json       format version and, per modality, the encoder identity and shape
    items.jsonl     one JSON string (item id) per line, in row order: the commit log
    <mod>.f32       float32 rows of shape (n_layers, hidden), row-major, memory-mapped
    <mod>.mask      uint8 per row: 1 when the item has this modality

Append-only: new items are appended as rows. Feature rows are written and
fsynced before their ids, so the number of complete lines in items.jsonl is the
committed row count; bytes past it (a crash mid-append) are cut off on open.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xsmoe.model.errors import FeatureStoreError, FeatureStoreMismatch

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
META_FILE = "meta.json"
IDS_FILE = "items.jsonl"


@dataclass(frozen=True)
class ModalitySpec:
    """What a modality's features are: the encoder identity and the row shape."""

    encoder: Mapping[str, Any]
    n_layers: int
    hidden: int

    def as_json(self) -> dict[str, Any]:
        return {"encoder": dict(self.encoder), "n_layers": self.n_layers, "hidden": self.hidden}


@dataclass(frozen=True)
class ModalityRows:
    """A batch of rows for one modality: features (B, L, H) and presence (B,)."""

    features: np.ndarray
    present: np.ndarray


def _differences(
    stored: Mapping[str, ModalitySpec], wanted: Mapping[str, ModalitySpec]
) -> list[tuple[str, object, object]]:
    diffs: list[tuple[str, object, object]] = []
    for modality in sorted(set(stored) | set(wanted)):
        if modality not in stored or modality not in wanted:
            diffs.append((modality, modality in stored, modality in wanted))
            continue
        old, new = stored[modality].as_json(), wanted[modality].as_json()
        for key in sorted(set(old["encoder"]) | set(new["encoder"])):
            if old["encoder"].get(key) != new["encoder"].get(key):
                diffs.append(
                    (f"{modality}.{key}", old["encoder"].get(key), new["encoder"].get(key))
                )
        for key in ("n_layers", "hidden"):
            if old[key] != new[key]:
                diffs.append((f"{modality}.{key}", old[key], new[key]))
    return diffs


def _fsync_append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class FeatureStore:
    """Append-only, memory-mapped item features for every modality."""

    def __init__(self, path: Path, specs: Mapping[str, ModalitySpec], ids: list[str]) -> None:
        self.path = path
        self.specs = dict(specs)
        self.item_ids = ids
        self._index = {item_id: row for row, item_id in enumerate(ids)}
        self._views: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # -- opening -----------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, expected: Mapping[str, ModalitySpec] | None = None) -> FeatureStore:
        """Open an existing store; if `expected` is given, refuse another encoder's store."""
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise FeatureStoreError(f"no feature store at {path} ({META_FILE} missing)")
        try:
            meta = json.loads(meta_path.read_text())
            specs = {
                name: ModalitySpec(m["encoder"], int(m["n_layers"]), int(m["hidden"]))
                for name, m in meta["modalities"].items()
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise FeatureStoreError(f"corrupt {meta_path}: {exc}") from exc
        if meta.get("format") != FORMAT_VERSION:
            raise FeatureStoreError(
                f"{meta_path} has format {meta.get('format')!r}; "
                f"this version reads format {FORMAT_VERSION}"
            )
        if expected is not None and (diffs := _differences(specs, expected)):
            raise FeatureStoreMismatch(str(path), diffs)
        store = cls(path, specs, cls._read_ids(path))
        store._truncate_to_committed()
        return store

    @classmethod
    def create(cls, path: Path, specs: Mapping[str, ModalitySpec]) -> FeatureStore:
        """Create an empty store (the directory may exist but must hold no store)."""
        if (path / META_FILE).exists():
            raise FeatureStoreError(f"a feature store already exists at {path}")
        path.mkdir(parents=True, exist_ok=True)
        for name in specs:
            for suffix in (".f32", ".mask"):
                (path / f"{name}{suffix}").write_bytes(b"")
        (path / IDS_FILE).write_bytes(b"")
        meta = {"format": FORMAT_VERSION, "modalities": {n: s.as_json() for n, s in specs.items()}}
        tmp = path / f".{META_FILE}.tmp"
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, path / META_FILE)  # meta last: its presence means "a store"
        return cls(path, specs, [])

    @classmethod
    def open_or_create(cls, path: Path, specs: Mapping[str, ModalitySpec]) -> FeatureStore:
        if (path / META_FILE).exists():
            return cls.open(path, expected=specs)
        return cls.create(path, specs)

    @staticmethod
    def _read_ids(path: Path) -> list[str]:
        raw = (path / IDS_FILE).read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]  # a torn last line was never committed
        if len(complete) != len(raw):
            log.warning("feature store %s: dropping a partly written item id line", path)
            with (path / IDS_FILE).open("r+b") as fh:
                fh.truncate(len(complete))
        return [json.loads(line) for line in complete.decode().splitlines()]

    def _row_bytes(self, name: str) -> int:
        spec = self.specs[name]
        return spec.n_layers * spec.hidden * 4

    def _truncate_to_committed(self) -> None:
        n = len(self.item_ids)
        for name in self.specs:
            for suffix, row in ((".f32", self._row_bytes(name)), (".mask", 1)):
                file = self.path / f"{name}{suffix}"
                size = file.stat().st_size
                if size < n * row:
                    raise FeatureStoreError(
                        f"{file} holds {size // row} rows but {IDS_FILE} lists {n} items: "
                        "the store is corrupt; rebuild it"
                    )
                if size > n * row:
                    log.warning("feature store %s: cutting uncommitted rows of %s", self.path, file)
                    with file.open("r+b") as fh:
                        fh.truncate(n * row)

    # -- reading -----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.item_ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    @property
    def modalities(self) -> list[str]:
        return list(self.specs)

    def row_of(self, item_id: str) -> int:
        return self._index[item_id]

    def _view(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.specs:
            raise FeatureStoreError(f"modality {name!r} not in store (has {self.modalities})")
        cached = self._views.get(name)
        if cached is not None and len(cached[1]) == len(self):
            return cached
        spec, n = self.specs[name], len(self)
        if n == 0:
            feats = np.zeros((0, spec.n_layers, spec.hidden), np.float32)
            mask = np.zeros((0,), np.uint8)
        else:
            feats = np.memmap(
                self.path / f"{name}.f32", np.float32, "r", shape=(n, spec.n_layers, spec.hidden)
            )
            mask = np.memmap(self.path / f"{name}.mask", np.uint8, "r", shape=(n,))
        self._views[name] = (feats, mask)
        return feats, mask

    def features(self, name: str) -> np.ndarray:
        """Read-only (n_items, n_layers, hidden) float32 view of a modality."""
        return self._view(name)[0]

    def present(self, name: str) -> np.ndarray:
        """(n_items,) bool: which items have this modality."""
        return self._view(name)[1].astype(bool)

    # -- writing -----------------------------------------------------------------
    def append(self, item_ids: Sequence[str], rows: Mapping[str, ModalityRows]) -> None:
        """Append new items; every modality of the store must get a row per item."""
        if missing := set(self.specs) - set(rows):
            raise FeatureStoreError(f"append lacks modalities {sorted(missing)}")
        seen: set[str] = set()
        for item_id in item_ids:
            if not isinstance(item_id, str) or not item_id:
                raise FeatureStoreError(f"item ids must be non-empty strings, got {item_id!r}")
            if item_id in self._index or item_id in seen:
                raise FeatureStoreError(f"item {item_id!r} is already in the store")
            seen.add(item_id)
        b = len(item_ids)
        for name, spec in self.specs.items():
            feats, present = rows[name].features, rows[name].present
            if feats.shape != (b, spec.n_layers, spec.hidden) or present.shape != (b,):
                raise FeatureStoreError(
                    f"{name} rows have shape {feats.shape} / {present.shape}, "
                    f"expected {(b, spec.n_layers, spec.hidden)} / {(b,)}"
                )
        for name in self.specs:
            feats = np.where(rows[name].present[:, None, None], rows[name].features, 0.0)
            _fsync_append(
                self.path / f"{name}.f32", np.ascontiguousarray(feats, np.float32).tobytes()
            )
            _fsync_append(self.path / f"{name}.mask", rows[name].present.astype(np.uint8).tobytes())
        lines = "".join(json.dumps(item_id) + "\n" for item_id in item_ids)
        _fsync_append(self.path / IDS_FILE, lines.encode())  # the commit point
        for item_id in item_ids:
            self._index[item_id] = len(self.item_ids)
            self.item_ids.append(item_id)

    def presence_counts(self) -> dict[str, int]:
        return {name: int(self.present(name).sum()) for name in self.specs}
