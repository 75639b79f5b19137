"""Runs new items' content through the frozen encoders once, for the model's modalities."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection

from PIL import Image

from xsmoe.common.items import StoredItem
from xsmoe.model.feature_build import CatalogEncoder
from xsmoe.model.features import ModalitySpec


class ItemEncoder:
    def __init__(self, encoder: CatalogEncoder, specs: dict[str, ModalitySpec]) -> None:
        self.encoder = encoder
        self.specs = specs
        self._lock = threading.Lock()  # HF tokenizers are not safe for concurrent calls

    def encode(
        self,
        item_id: str,
        text: str | None,
        image: Image.Image | None,
        modalities: Collection[str],
    ) -> StoredItem:
        """Features of the given modalities that `modalities` asks for (blocking)."""
        text = text if text and text.strip() and "text" in modalities else None
        image = image if "image" in modalities else None
        with self._lock:
            rows = self.encoder.encode([text], [image], self.specs)
        features = {m: r.features[0] for m, r in rows.items() if bool(r.present[0])}
        meta = {
            "text": text,
            "created_at": time.time(),
            "shapes": {m: list(f.shape) for m, f in features.items()},
            "encoders": {m: self.specs[m].encoder for m in features},
        }
        return StoredItem(item_id, meta, features)
