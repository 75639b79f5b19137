"""Versioned model snapshots: everything serving needs, loadable in a fresh process.

A snapshot directory holds:

    config.json             the recommender's full architecture (every shape, per-stage
                            expert counts and which are frozen) + the feature specs
    weights.safetensors     model weights (safetensors only: loading runs no code)
    items.json              item ids in row order
    embeddings.safetensors  item embeddings (N, d), row order
    index.faiss             the serving index over the embeddings (labels = rows), built
                            here once (model.ann: exact or IVF, recall measured)
    manifest.json           version, parent, created_at, metrics, experts, the index's
                            kind, parameters and recall@10, checksums

Snapshots are written to a temporary name and renamed; the CURRENT pointer is
written last, so a crash never leaves a half-written current snapshot.

Loading maps the index and the embeddings rather than copying them: replicas on
one host share the page cache, and a million-item catalog costs a replica the
pages its queries touch, not the catalog.

A snapshot is device-free: weights are saved from float32 CPU copies, whatever
device and precision the model trained in, and load on the CPU in float32.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from xsmoe.model.ann import IndexOptions, build_ann_index, read_index, write_index
from xsmoe.model.features import ModalitySpec
from xsmoe.model.item_ids import ItemIds
from xsmoe.model.recommender import Recommender, RecommenderConfig

# The layout's names are re-exported (X as X): snapshot users import one module.
from xsmoe.model.snapshot_layout import (
    FILES as FILES,
)
from xsmoe.model.snapshot_layout import (
    FORMAT_VERSION as FORMAT_VERSION,
)
from xsmoe.model.snapshot_layout import (
    MANIFEST as MANIFEST,
)
from xsmoe.model.snapshot_layout import (
    POINTER as POINTER,
)
from xsmoe.model.snapshot_layout import (
    SnapshotError as SnapshotError,
)
from xsmoe.model.snapshot_layout import (
    _fsync_dir as _fsync_dir,
)
from xsmoe.model.snapshot_layout import (
    check_version as check_version,
)
from xsmoe.model.snapshot_layout import (
    current_version as current_version,
)
from xsmoe.model.snapshot_layout import (
    index_entry as index_entry,
)
from xsmoe.model.snapshot_layout import (
    list_versions as list_versions,
)
from xsmoe.model.snapshot_layout import (
    next_version as next_version,
)
from xsmoe.model.snapshot_layout import (
    set_current as set_current,
)
from xsmoe.model.snapshot_layout import (
    sha256_of as sha256_of,
)
from xsmoe.model.snapshot_layout import (
    version_name as version_name,
)

QUERIES = 1000  # item vectors standing in for queries when no user vectors are given

# Buffers snapshots written before utilization was saved lack: loaded as zeros.
_OPTIONAL = ("usage_sum", "usage_count")


@dataclass(frozen=True)
class Snapshot:
    path: Path
    version: str
    manifest: dict[str, Any]
    model: Recommender
    item_ids: ItemIds
    embeddings: np.ndarray  # (N, d) float32, a read-only memory map
    index: faiss.Index  # memory-mapped where FAISS allows (IVF lists)
    feature_specs: dict[str, ModalitySpec]

    @property
    def index_info(self) -> dict[str, Any]:
        """The manifest's index entry; snapshots written before it had exact indexes."""
        return index_entry(self.manifest)


def save_snapshot(
    root: Path,
    model: Recommender,
    item_ids: list[str],
    embeddings: np.ndarray,
    feature_specs: dict[str, ModalitySpec],
    *,
    parent: str | None = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    version: str | None = None,
    queries: np.ndarray | None = None,
    index: IndexOptions | None = None,
) -> Path:
    """Write a new versioned snapshot (not yet current) and return its directory.

    The serving index is built here, once per version. `queries`: user vectors of
    real histories, on which its recall@10 against exact search is measured (none:
    a sample of the items themselves, recorded as such). Raises RecallTooLow, and
    writes nothing, if the index cannot reach `index.min_recall`."""
    if len(item_ids) != len(embeddings):
        raise SnapshotError(f"{len(item_ids)} item ids but {len(embeddings)} embeddings")
    _refuse_duplicates(item_ids, "item ids")
    root.mkdir(parents=True, exist_ok=True)
    version = version or next_version(root)
    if (root / version).exists():
        raise SnapshotError(f"snapshot {version} already exists in {root}")
    config = model.current_config()
    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    query_source = "users"
    if queries is not None and len(queries) and queries.shape[1:] != vectors.shape[1:]:
        raise SnapshotError(
            f"queries of shape {list(queries.shape)} for {list(vectors.shape)} items"
        )
    if queries is None or not len(queries):
        query_source = "items"
        picked = np.random.default_rng(0).choice(len(vectors), min(len(vectors), QUERIES))
        queries = vectors[np.sort(picked)]
    ann, report = build_ann_index(vectors, queries, index or IndexOptions())
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=root))
    try:
        (tmp / "config.json").write_text(
            json.dumps(
                {
                    "format": FORMAT_VERSION,
                    "recommender": config.to_json(),
                    "features": {m: s.as_json() for m, s in feature_specs.items()},
                },
                indent=2,
            )
        )
        save_file(portable_state(model), str(tmp / "weights.safetensors"))
        (tmp / "items.json").write_text(json.dumps(item_ids))
        save_file({"items": torch.from_numpy(vectors)}, str(tmp / "embeddings.safetensors"))
        write_index(ann, tmp / "index.faiss")
        del ann
        manifest = {
            "format": FORMAT_VERSION,
            "version": version,
            "parent": parent,
            "created_at": time.time(),
            "items": len(item_ids),
            "embed_dim": int(vectors.shape[1]) if vectors.ndim == 2 else 0,
            "experts": {m: list(e) for m, e in config.experts.items()},
            "encoders": {m: dict(s.encoder) for m, s in feature_specs.items()},
            "metrics": metrics or {},
            "index": {**report.manifest(tmp / "index.faiss"), "query_source": query_source},
            **(extra or {}),
            "checksums": {name: sha256_of(tmp / name) for name in FILES},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        for name in (*FILES, MANIFEST):
            with (tmp / name).open("rb") as fh:
                os.fsync(fh.fileno())
        os.rename(tmp, root / version)
        _fsync_dir(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root / version


def portable_state(model: Recommender) -> dict[str, torch.Tensor]:
    """The model's state as CPU tensors, floating ones in float32 (what serving loads)."""
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        state[key] = (value.float() if value.is_floating_point() else value).contiguous()
    return state


def _refuse_duplicates(item_ids: list[str], where: str) -> None:
    seen: set[str] = set()
    for item_id in item_ids:
        if item_id in seen:
            raise SnapshotError(f"{where}: item id {item_id!r} appears more than once")
        seen.add(item_id)


def _check_sizes(path: Path, config: RecommenderConfig, item_ids: Sequence[str]) -> None:
    """Every size the config and files claim, checked against each other from headers
    alone: a snapshot that lies about its size is refused before anything is allocated."""
    n = len(item_ids)
    for name, rows in (
        ("n_item_ids", config.n_item_ids),
        ("id_residual_rows", config.id_residual_rows),
    ):
        if rows > n:
            raise SnapshotError(f"{path}: config {name} is {rows}, but the snapshot has {n} items")
    try:
        with safe_open(str(path / "embeddings.safetensors"), framework="pt") as fh:
            shape = tuple(fh.get_slice("items").get_shape())
            dtype = fh.get_slice("items").get_dtype()
        with safe_open(str(path / "weights.safetensors"), framework="pt") as fh:
            stored = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, KeyError) as exc:
        raise SnapshotError(f"{path}: unreadable embeddings or weights: {exc}") from exc
    if dtype != "F32":
        raise SnapshotError(f"{path}: embeddings are {dtype}, expected F32 (float32)")
    if len(shape) != 2 or shape[0] != n:
        raise SnapshotError(f"{path}: {n} item ids but embeddings of shape {list(shape)}")
    if shape[1] != config.embed_dim:
        raise SnapshotError(
            f"{path}: embeddings have dimension {shape[1]}, the model embeds in {config.embed_dim}"
        )
    with torch.device("meta"):  # the architecture's shapes, without its memory
        wanted = {k: tuple(v.shape) for k, v in Recommender(config).state_dict().items()}
    missing = [k for k in wanted.keys() - stored.keys() if not k.endswith(_OPTIONAL)]
    unexpected = sorted(stored.keys() - wanted.keys())
    wrong = [
        f"{k} {list(stored[k])} (expected {list(v)})"
        for k, v in wanted.items()
        if k in stored and stored[k] != v
    ]
    if missing or unexpected or wrong:
        raise SnapshotError(
            f"{path}: weights do not fit the recorded architecture: missing keys "
            f"{sorted(missing)}, unexpected keys {unexpected}, wrong shapes {wrong[:5]}"
        )


def map_tensor(path: Path, name: str, dim: int) -> np.ndarray:
    """A float32 (N, dim) tensor of a safetensors file as a read-only memory map (the
    format is an 8-byte header length, a JSON header, then raw little-endian data);
    the dtype and shape were checked against the header by `_check_sizes`."""
    with path.open("rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        entry = json.loads(fh.read(size))[name]
    begin, end = (int(o) for o in entry["data_offsets"])
    rows = (end - begin) // (4 * dim) if dim else 0
    if rows == 0:  # mmap refuses an empty range
        return np.zeros((0, dim), np.float32)
    return np.memmap(path, np.float32, "r", offset=8 + size + begin, shape=(rows, dim))


def _load_weights(model: Recommender, weights: dict[str, torch.Tensor]) -> None:
    """Strict, except that snapshots written before utilization was saved may lack it."""
    result = model.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith(_OPTIONAL)]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"missing keys {missing}, unexpected keys {result.unexpected_keys}")


def load_snapshot(
    path: Path,
    expected_features: dict[str, ModalitySpec] | None = None,
    known_ids: tuple[str, ItemIds] | None = None,
) -> Snapshot:
    """Load and validate a snapshot directory; refuses corrupt or incompatible ones.

    `known_ids`: (checksum of an items.json, its checked ids), e.g. the version served
    now's. A snapshot with the same items.json takes that list instead of parsing a
    million ids again (a long hold of the GIL, felt by every request in flight)."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise SnapshotError(f"no snapshot at {path} ({MANIFEST} missing)")
    try:
        manifest = json.loads(manifest_path.read_text())
        checksums: dict[str, str] = manifest["checksums"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"corrupt {manifest_path}: {exc}") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise SnapshotError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT_VERSION}")
    for name in FILES:
        file = path / name
        if not file.is_file():
            raise SnapshotError(f"{path}: {name} is missing")
        if sha256_of(file) != checksums.get(name):
            raise SnapshotError(f"{path}: checksum mismatch for {name} (corrupt or tampered)")
    try:
        config_doc = json.loads((path / "config.json").read_text())
        config = RecommenderConfig.from_json(config_doc["recommender"])
        specs = {
            m: ModalitySpec(s["encoder"], int(s["n_layers"]), int(s["hidden"]))
            for m, s in config_doc["features"].items()
        }
        same = known_ids is not None and known_ids[0] == checksums.get("items.json")
        if known_ids is not None and same:
            item_ids = known_ids[1]
        else:
            item_ids = ItemIds(json.loads((path / "items.json").read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"{path}: unreadable config or items: {exc}") from exc
    if expected_features is not None:
        for m, spec in specs.items():
            want = expected_features.get(m)
            if want is None or want.as_json() != spec.as_json():
                raise SnapshotError(
                    f"{path}: built on {m} features {spec.as_json()}, "
                    f"but this deployment has {want.as_json() if want else 'none'}"
                )
    if not same and (repeated := item_ids.duplicates()):  # repeated results, seen items back
        raise SnapshotError(f"{path}: item id {repeated[0]!r} appears more than once")
    _check_sizes(path, config, item_ids)
    model = Recommender(config)
    try:
        weights = load_file(str(path / "weights.safetensors"), device="cpu")
        vectors = map_tensor(path / "embeddings.safetensors", "items", config.embed_dim)
        _load_weights(model, weights)
        index = read_index(path / "index.faiss", mmap=True)
    except (SafetensorError, RuntimeError, KeyError, ValueError) as exc:
        raise SnapshotError(f"{path}: weights do not fit the recorded architecture: {exc}") from exc
    if index.ntotal != len(item_ids):
        raise SnapshotError(f"{path}: {len(item_ids)} items but the index holds {index.ntotal}")
    if index.d != config.embed_dim:
        raise SnapshotError(
            f"{path}: the index has dimension {index.d}, the model embeds in {config.embed_dim}"
        )
    model.eval()
    return Snapshot(
        path, str(manifest["version"]), manifest, model, item_ids, vectors, index, specs
    )


def load_current(root: Path, expected_features: dict[str, ModalitySpec] | None = None) -> Snapshot:
    version = current_version(root)
    if version is None:
        raise SnapshotError(
            f"no current snapshot in {root} ({POINTER} missing); run xsmoe bootstrap"
        )
    return load_snapshot(root / version, expected_features)
