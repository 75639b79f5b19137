"""Runs new items' content through the frozen encoders once, for the model's modalities."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Collection, Sequence

from PIL import Image

from xsmoe.common.items import StoredItem
from xsmoe.model.feature_build import CatalogEncoder
from xsmoe.model.features import ModalitySpec


class ItemEncoder:
    def __init__(self, encoder: CatalogEncoder, specs: dict[str, ModalitySpec]) -> None:
        self.encoder = encoder
        self.specs = specs
        self._lock = threading.Lock()  # HF tokenizers are not safe for concurrent calls
        self._frozen = False

    def encode(
        self,
        item_id: str,
        text: str | None,
        image: Image.Image | None,
        modalities: Collection[str],
    ) -> StoredItem:
        """Features of the given modalities that `modalities` asks for (blocking)."""
        return self.encode_many([(item_id, text, image)], modalities)[0]

    def encode_many(
        self,
        items: Sequence[tuple[str, str | None, Image.Image | None]],
        modalities: Collection[str],
        batch: int = 64,
    ) -> list[StoredItem]:
        """`encode` for many items, through the encoders `batch` at a time (blocking)."""
        out: list[StoredItem] = []
        for lo in range(0, len(items), batch):
            chunk = items[lo : lo + batch]
            texts = [t if t and t.strip() and "text" in modalities else None for _, t, _ in chunk]
            images = [i if "image" in modalities else None for _, _, i in chunk]
            with self._lock:
                rows = self.encoder.encode(texts, images, self.specs)
                if not self._frozen:
                    # The first encode loads the encoders (transformers, tokenizer: ~57k
                    # objects for the default text encoder). Left to the collector, every
                    # full pass walks them for good (11 ms each on main, 0 once frozen),
                    # on the GIL, so the loop waits; they live as long as the process.
                    gc.freeze()
                    self._frozen = True
            now = time.time()
            for j, (item_id, _, _) in enumerate(chunk):
                features = {m: r.features[j].copy() for m, r in rows.items() if bool(r.present[j])}
                meta = {
                    "text": texts[j],
                    "created_at": now,
                    "shapes": {m: list(f.shape) for m, f in features.items()},
                    "encoders": {m: self.specs[m].encoder for m in features},
                }
                out.append(StoredItem(item_id, meta, features))
        return out
