"""Items added at run time, as kept in Redis: metadata plus frozen-encoder features.

The features are the expensive part (a pass through the frozen encoders), so
they are computed once, by the replica that accepted the item, and shared: the
other replicas embed them with their own model, and the worker carries them
into every later snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xsmoe.common.keys import Keys

FEATURE_FIELD = "feat:"


@dataclass(frozen=True)
class StoredItem:
    item_id: str
    meta: dict[str, Any]  # text, created_at, modalities with shapes, encoder identities
    features: dict[str, np.ndarray]  # modality -> (L, H) float32, present modalities only

    def to_hash(self) -> dict[str, bytes]:
        fields = {"meta": json.dumps(self.meta).encode()}
        for m, feats in self.features.items():
            fields[FEATURE_FIELD + m] = np.ascontiguousarray(feats, np.float32).tobytes()
        return fields

    @classmethod
    def from_hash(cls, item_id: str, fields: dict[bytes, bytes]) -> StoredItem:
        """Parse a Redis hash; raises ValueError on a damaged one."""
        try:
            meta = json.loads(fields[b"meta"])
            shapes = {m: tuple(int(x) for x in s) for m, s in meta["shapes"].items()}
            features = {
                m: np.frombuffer(fields[(FEATURE_FIELD + m).encode()], np.float32).reshape(shape)
                for m, shape in shapes.items()
            }
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"stored item {item_id!r} is damaged: {exc}") from exc
        return cls(item_id, meta, features)

    def fits(self, modality: str, shape: tuple[int, int]) -> bool:
        """Whether this item has features of `modality` with this (layers, hidden) shape."""
        f = self.features.get(modality)
        return f is not None and tuple(f.shape) == shape


def stack_features(
    items: Sequence[StoredItem], shapes: Mapping[str, tuple[int, int]]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per modality: (B, L, H) features and (B,) presence; a modality an item lacks, or
    has in another shape, is zeros and absent."""
    out = {}
    for m, (n_layers, hidden) in shapes.items():
        feats = np.zeros((len(items), n_layers, hidden), np.float32)
        present = np.zeros(len(items), bool)
        for j, item in enumerate(items):
            if item.fits(m, (n_layers, hidden)):
                feats[j], present[j] = item.features[m], True
        out[m] = (feats, present)
    return out


# -- what an item is, kept beside its features ------------------------------------
# The features hash of a run-time item goes once a snapshot carries the item (the
# worker drops it), but what the item *is* (its text, tags, times, the digest of the
# image it was made from) stays, so a lookup still shows it and a retried PUT can
# tell "the same item again" from "another item under this id".
META_SUFFIX = ":meta"


def meta_key(keys: Keys) -> str:
    """Hash item id -> ItemMeta JSON (catalog slot: beside the item set)."""
    return keys.items + META_SUFFIX


@dataclass(frozen=True)
class ItemMeta:
    text: str | None
    tags: tuple[str, ...]
    created_at: float | None
    updated_at: float | None
    image_sha256: str | None  # of the image bytes as sent; None: sent without an image

    def to_json(self) -> str:
        return json.dumps(
            {
                "text": self.text,
                "tags": list(self.tags),
                "created_at": self.created_at,
                "updated_at": self.updated_at,
                "image_sha256": self.image_sha256,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> ItemMeta:
        """Parse a stored value; raises ValueError on a damaged one."""
        try:
            data = json.loads(raw)
            return cls(
                text=data.get("text"),
                tags=tuple(str(t) for t in data.get("tags") or ()),
                created_at=data.get("created_at"),
                updated_at=data.get("updated_at"),
                image_sha256=data.get("image_sha256"),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"stored item metadata is damaged: {exc}") from exc

    def same_content(self, text: str | None, image_sha256: str | None) -> bool:
        """Whether this content is what the item was made from."""
        return (self.text or None) == (text or None) and self.image_sha256 == image_sha256
