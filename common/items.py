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
