from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xsmoe.model.data import CatalogItem
from xsmoe.model.encoders import ImageEncoderConfig, TextEncoderConfig
from xsmoe.model.feature_build import CatalogEncoder, build_features
from xsmoe.model.features import FeatureStore


@pytest.fixture
def encoder(tiny_bert_dir: Path, tiny_vit_dir: Path, tmp_path: Path) -> CatalogEncoder:
    return CatalogEncoder(
        TextEncoderConfig(model=str(tiny_bert_dir), layers=(0, 2)),
        ImageEncoderConfig(model=str(tiny_vit_dir), layers=(0, 2), image_size=32, resize_size=36),
        cache_dir=tmp_path / "cache",
    )


def _catalog(tmp_path: Path) -> list[CatalogItem]:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    return [
        CatalogItem("both", "toy story", tmp_path / "ok.png"),
        CatalogItem("text-only", "war drama", None),
        CatalogItem("image-only", None, tmp_path / "ok.png"),
        CatalogItem("missing-file", "space night", tmp_path / "nope.png"),
        CatalogItem("corrupt-file", "   ", tmp_path / "corrupt.jpg"),
    ]


def test_presence_and_bad_images_become_missing(
    encoder: CatalogEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FeatureStore.create(tmp_path / "store", encoder.specs())
    caplog.set_level(logging.WARNING)
    report = build_features(store, _catalog(tmp_path), encoder, batch_size=2)
    assert (report.encoded, report.reused, report.total) == (5, 0, 5)
    assert store.present("text").tolist() == [True, True, False, True, False]
    assert store.present("image").tolist() == [True, False, True, False, False]
    warnings = " ".join(r.getMessage() for r in caplog.records)
    assert "nope.png not found" in warnings and "corrupt.jpg unreadable" in warnings
    np.testing.assert_array_equal(store.features("image")[3], 0.0)
    # Stored rows equal what the encoders give for the same input, batch-independent.
    np.testing.assert_allclose(
        store.features("text")[0], encoder.text.encode(["toy story"])[0], atol=1e-5
    )
    img = Image.open(tmp_path / "ok.png").convert("RGB")
    np.testing.assert_allclose(
        store.features("image")[2], encoder.image.encode([img])[0], atol=1e-5
    )


def test_second_build_reuses_the_cache(encoder: CatalogEncoder, tmp_path: Path) -> None:
    store = FeatureStore.create(tmp_path / "store", encoder.specs())
    build_features(store, _catalog(tmp_path)[:2], encoder)
    seen: list[int] = []
    again = FeatureStore.open(tmp_path / "store", expected=encoder.specs())
    report = build_features(again, _catalog(tmp_path), encoder, progress=seen.append)
    assert (report.encoded, report.reused, report.total) == (3, 2, 5)
    assert sum(seen) == 5


def test_text_only_catalog_never_loads_the_image_model(tiny_bert_dir: Path, tmp_path: Path) -> None:
    encoder = CatalogEncoder(
        TextEncoderConfig(model=str(tiny_bert_dir), layers=(0, 2)),
        ImageEncoderConfig(),  # the built-in DINOv2: shape known without converting it
        cache_dir=tmp_path / "cache",
    )
    store = FeatureStore.create(tmp_path / "store", encoder.specs())
    build_features(store, [CatalogItem("a", "toy story")], encoder)
    assert encoder._image is None and not (tmp_path / "cache").exists()
    assert store.features("image").shape == (1, 3, 384)
