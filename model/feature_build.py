"""Encode catalog items with the frozen encoders into a feature store.

Encoders load lazily: a catalog without images (MovieLens) never loads the
image model. An unreadable image is logged and stored as a missing modality.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from xsmoe.model.data import CatalogItem
from xsmoe.model.encoders import (
    ImageEncoder,
    ImageEncoderConfig,
    TextEncoder,
    TextEncoderConfig,
    feature_shape,
    identity,
)
from xsmoe.model.features import FeatureStore, ModalityRows, ModalitySpec
from xsmoe.model.image_prep import load_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildReport:
    encoded: int
    reused: int
    total: int
    present: dict[str, int]
    seconds: float


class CatalogEncoder:
    """The frozen text and image encoders of one deployment, loaded on first need."""

    def __init__(
        self, text: TextEncoderConfig, image: ImageEncoderConfig, *, cache_dir: Path
    ) -> None:
        self.text_config = text
        self.image_config = image
        self.cache_dir = cache_dir
        self._text: TextEncoder | None = None
        self._image: ImageEncoder | None = None

    def specs(self) -> dict[str, ModalitySpec]:
        """Feature shapes and encoder identities; validates names and layers cheaply."""
        specs = {}
        for name, config in (("text", self.text_config), ("image", self.image_config)):
            n_layers, hidden = feature_shape(config, self.cache_dir)
            specs[name] = ModalitySpec(identity(config), n_layers, hidden)
        return specs

    @property
    def text(self) -> TextEncoder:
        if self._text is None:
            self._text = TextEncoder(self.text_config, cache_dir=self.cache_dir)
        return self._text

    @property
    def image(self) -> ImageEncoder:
        if self._image is None:
            self._image = ImageEncoder(self.image_config, cache_dir=self.cache_dir)
        return self._image

    def encode(
        self,
        texts: Sequence[str | None],
        images: Sequence[Image.Image | None],
        specs: dict[str, ModalitySpec],
    ) -> dict[str, ModalityRows]:
        """Rows for a batch; a None text or image is a missing modality (zeros, absent)."""
        out = {}
        for name, values in (("text", texts), ("image", images)):
            spec = specs[name]
            feats = np.zeros((len(values), spec.n_layers, spec.hidden), np.float32)
            present = np.array([v is not None for v in values], dtype=bool)
            if present.any():
                given = [v for v in values if v is not None]
                if name == "text":
                    feats[present] = self.text.encode([str(v) for v in given])
                else:
                    feats[present] = self.image.encode(
                        [v for v in given if isinstance(v, Image.Image)]
                    )
            out[name] = ModalityRows(feats, present)
        return out


def build_features(
    store: FeatureStore,
    items: Sequence[CatalogItem],
    encoder: CatalogEncoder,
    *,
    batch_size: int = 64,
    progress: Callable[[int], object] | None = None,
) -> BuildReport:
    """Append every item not yet in the store; items already there are reused."""
    start = time.perf_counter()
    todo = [item for item in items if item.item_id not in store]
    reused = len(items) - len(todo)
    if progress is not None and reused:
        progress(reused)
    for lo in range(0, len(todo), batch_size):
        batch = todo[lo : lo + batch_size]
        texts = [item.text.strip() if item.text and item.text.strip() else None for item in batch]
        images = [load_image(item.image) if item.image is not None else None for item in batch]
        store.append([item.item_id for item in batch], encoder.encode(texts, images, store.specs))
        if progress is not None:
            progress(len(batch))
    seconds = time.perf_counter() - start
    log.info("features: %d encoded, %d reused, %.1f s", len(todo), reused, seconds)
    return BuildReport(len(todo), reused, len(store), store.presence_counts(), seconds)
