from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xsmoe.model.errors import FeatureStoreError, FeatureStoreMismatch
from xsmoe.model.features import FeatureStore, ModalityRows, ModalitySpec

SPECS = {
    "text": ModalitySpec({"model": "tiny-bert", "layers": [0, 2]}, n_layers=2, hidden=4),
    "image": ModalitySpec({"model": "tiny-vit", "layers": [0, 1, 2]}, n_layers=3, hidden=5),
}


def _rows(b: int, seed: int, image_present: bool = True) -> dict[str, ModalityRows]:
    rng = np.random.default_rng(seed)
    return {
        "text": ModalityRows(rng.normal(size=(b, 2, 4)).astype(np.float32), np.ones(b, bool)),
        "image": ModalityRows(
            rng.normal(size=(b, 3, 5)).astype(np.float32), np.full(b, image_present)
        ),
    }


def test_append_and_reopen_memory_mapped(tmp_path: Path) -> None:
    store = FeatureStore.create(tmp_path / "s", SPECS)
    first, second = _rows(3, 0), _rows(2, 1, image_present=False)
    store.append(["a", "b", "c"], first)
    store.append(["d", "e"], second)
    again = FeatureStore.open(tmp_path / "s", expected=SPECS)
    assert again.item_ids == ["a", "b", "c", "d", "e"] and len(again) == 5
    text = again.features("text")
    assert isinstance(text, np.memmap) and text.shape == (5, 2, 4)
    np.testing.assert_array_equal(text[:3], first["text"].features)
    np.testing.assert_array_equal(again.features("image")[3:], 0.0)  # absent -> zeros
    assert again.present("image").tolist() == [True, True, True, False, False]
    assert again.presence_counts() == {"text": 5, "image": 3}
    assert again.row_of("d") == 3 and "e" in again and "z" not in again


def test_other_encoder_is_refused_naming_the_setting(tmp_path: Path) -> None:
    FeatureStore.create(tmp_path, SPECS)
    other = dict(SPECS, text=ModalitySpec({"model": "tiny-bert", "layers": [0, 1]}, 2, 4))
    with pytest.raises(FeatureStoreMismatch, match=r"text\.layers: store has \[0, 2\]"):
        FeatureStore.open(tmp_path, expected=other)
    wider = dict(SPECS, image=ModalitySpec(SPECS["image"].encoder, 3, 8))
    with pytest.raises(FeatureStoreMismatch, match=r"image\.hidden"):
        FeatureStore.open_or_create(tmp_path, wider)


def test_torn_append_is_cut_back_on_open(tmp_path: Path) -> None:
    store = FeatureStore.create(tmp_path, SPECS)
    store.append(["a", "b"], _rows(2, 0))
    # A crash after the feature bytes but before the id line was complete:
    with (tmp_path / "text.f32").open("ab") as fh:
        fh.write(b"\0" * 2 * 4 * 4)
    with (tmp_path / "items.jsonl").open("ab") as fh:
        fh.write(b'"c')
    again = FeatureStore.open(tmp_path)
    assert again.item_ids == ["a", "b"]
    assert (tmp_path / "text.f32").stat().st_size == 2 * 2 * 4 * 4
    again.append(["c"], _rows(1, 5))
    assert FeatureStore.open(tmp_path).item_ids == ["a", "b", "c"]


def test_bad_appends_are_refused(tmp_path: Path) -> None:
    store = FeatureStore.create(tmp_path, SPECS)
    store.append(["a"], _rows(1, 0))
    with pytest.raises(FeatureStoreError, match="already in the store"):
        store.append(["a"], _rows(1, 0))
    with pytest.raises(FeatureStoreError, match="already in the store"):
        store.append(["x", "x"], _rows(2, 0))
    with pytest.raises(FeatureStoreError, match="expected"):
        store.append(["y"], _rows(2, 0))
    with pytest.raises(FeatureStoreError, match="lacks modalities"):
        store.append(["y"], {"text": _rows(1, 0)["text"]})
    with pytest.raises(FeatureStoreError, match="non-empty"):
        store.append([""], _rows(1, 0))
    assert FeatureStore.open(tmp_path).item_ids == ["a"]


def test_missing_or_corrupt_store(tmp_path: Path) -> None:
    with pytest.raises(FeatureStoreError, match="no feature store"):
        FeatureStore.open(tmp_path)
    FeatureStore.create(tmp_path, SPECS)
    with pytest.raises(FeatureStoreError, match="already exists"):
        FeatureStore.create(tmp_path, SPECS)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(FeatureStoreError, match="corrupt"):
        FeatureStore.open(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": 99, "modalities": {}}))
    with pytest.raises(FeatureStoreError, match="format 99"):
        FeatureStore.open(tmp_path)
