from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.model.synthetic import cyclic_stream, small_config
from xsmoe.model.ann import IndexOptions
from xsmoe.model.features import ModalitySpec
from xsmoe.model.recommender import Recommender
from xsmoe.model.retrieval import ItemFeatures, Retriever, embed_features
from xsmoe.model.snapshot import load_snapshot, save_snapshot

POPULAR = ["i5", "i7", "i9", "nope"]


def _retriever(tmp_path: Path, index: IndexOptions | None = None) -> Retriever:
    torch.manual_seed(0)
    table, _ = cyclic_stream()
    model = Recommender(small_config()).eval()
    embeddings = model.item_embeddings(table).numpy()
    ids = [f"i{r}" for r in range(len(table))]
    specs = {"text": ModalitySpec({"model": "synthetic"}, 3, 16)}
    path = save_snapshot(tmp_path, model, ids, embeddings, specs, index=index)
    return Retriever.from_snapshot(load_snapshot(path))


def _new_items(n: int, seed: int = 1) -> ItemFeatures:
    rng = np.random.default_rng(seed)
    return ItemFeatures(
        {"text": rng.normal(size=(n, 3, 16)).astype(np.float32)}, {"text": np.ones(n, bool)}
    )


def _brute_force(r: Retriever, vector: np.ndarray, banned: set[int], k: int) -> list[int]:
    everything = r.catalog.vectors(list(range(r.catalog.n_main + len(r.catalog.added_ids))))
    scores = everything @ vector
    return [int(i) for i in np.argsort(-scores) if int(i) not in banned][:k]


def test_top_k_matches_brute_force_and_excludes_seen(tmp_path: Path) -> None:
    r = _retriever(tmp_path)
    history = ["i1", "i2", "i3"]
    result = r.recommend(history, k=10, exclude=["i40"])
    vector, _ = r.user_vector(history)
    assert vector is not None
    expected = _brute_force(r, vector, {1, 2, 3, 40}, 10)
    assert [x.item_id for x in result.items] == [f"i{i}" for i in expected]
    scores = r.catalog.main_vectors[expected] @ vector
    np.testing.assert_allclose([x.score for x in result.items], scores, rtol=1e-5)
    assert result.fallback is None and result.unknown_ids == []
    with_seen = r.recommend(history, k=60, exclude_seen=False)
    assert {"i1", "i2", "i3"} <= {x.item_id for x in with_seen.items}
    assert r.catalog.main_index.ntotal == 60  # the shared index was not touched


def test_unknown_ids_are_reported_and_empty_history_falls_back(tmp_path: Path) -> None:
    r = _retriever(tmp_path)
    result = r.recommend(["ghost", "i4"], k=3)
    assert result.unknown_ids == ["ghost"] and len(result.items) == 3
    cold = r.recommend(["ghost"], k=2, exclude=["i5"], popular=POPULAR)
    assert cold.fallback == "popular"
    assert [x.item_id for x in cold.items] == ["i7", "i9"]
    assert len(r.recommend([], k=100, popular=POPULAR).items) == 3  # only known popular items


def test_added_items_are_searched_beside_the_snapshot_and_deleted_ones_never(
    tmp_path: Path,
) -> None:
    r = _retriever(tmp_path)
    vectors = embed_features(r.model, _new_items(5))
    grown = r.with_catalog(r.catalog.with_items([f"new{j}" for j in range(5)], vectors))
    assert len(grown.catalog) == 65 and len(r.catalog) == 60  # copy on write
    history = ["i1", "new2"]  # an added item conditions the user vector too
    vector, unknown = grown.user_vector(history)
    assert vector is not None and unknown == []
    expected = _brute_force(grown, vector, {1, 62}, 65)
    got = grown.recommend(history, k=65)
    assert [x.item_id for x in got.items] == [grown.catalog.item_id(i) for i in expected]
    # The new item itself is found by a user whose vector points at it.
    target = grown.catalog.vectors([61])[0]
    assert grown.catalog.search(target * 100, 1)[0].row in {61, *range(60)}
    shrunk = grown.with_catalog(grown.catalog.without(["new0", "i7", "ghost"]))
    ids = {x.item_id for x in shrunk.recommend(["i1"], k=64).items}
    assert "new0" not in ids and "i7" not in ids and len(ids) == 62
    assert shrunk.catalog.is_deleted("i7") and not shrunk.catalog.is_deleted("i8")
    assert [x.item_id for x in shrunk.recommend([], k=2, popular=["i7", "i9"]).items] == ["i9"]


def test_an_ivf_index_above_the_threshold_is_served_at_its_measured_probes(
    tmp_path: Path,
) -> None:
    exact = _retriever(tmp_path / "a")
    approx = _retriever(tmp_path / "b", IndexOptions(exact_max_items=10, min_recall=0.9))
    assert type(exact.catalog.main_index).__name__ == "IndexFlatIP"
    assert type(approx.catalog.main_index).__name__ == "IndexIVFFlat"
    info = load_snapshot(tmp_path / "b" / approx.version).index_info
    assert info["kind"] == "ivf_flat" and info["recall@10"] >= 0.9
    assert approx.catalog.nprobe == info["params"]["nprobe"] >= 1
    for history in (["i1", "i2"], ["i30"], ["i9", "i50", "i51"]):
        a = [x.item_id for x in exact.recommend(history, k=10).items]
        b = [x.item_id for x in approx.recommend(history, k=10).items]
        assert len(b) == 10 and not set(history) & set(b)  # exclusions hold on IVF too
        assert len(set(a) & set(b)) >= 7
    # a page deeper than the probed lists hold still comes back whole
    deep = approx.recommend(["i1"], k=55).items
    assert len(deep) == 55 and len({x.item_id for x in deep}) == 55


def test_a_model_without_content_tower_cannot_embed_new_items() -> None:
    from dataclasses import replace

    model = Recommender(replace(small_config(), n_item_ids=10))
    with pytest.raises(ValueError, match="content tower"):
        embed_features(model, _new_items(1))


def test_batched_user_vectors_equal_one_at_a_time(tmp_path: Path) -> None:
    r = _retriever(tmp_path)
    histories = [[1, 2, 3], [7], [5, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29]]  # > max_len
    batch = r.user_vectors([h[-10:] for h in histories])
    for rows, vector in zip(histories, batch, strict=True):
        single, _ = r.user_vector([f"i{x}" for x in rows])
        assert single is not None
        np.testing.assert_allclose(vector, single, atol=1e-5)
    given = r.recommend(["i1", "i2", "i3"], 5, vector=batch[0]).items
    computed = r.recommend(["i1", "i2", "i3"], 5).items
    assert [x.item_id for x in given] == [x.item_id for x in computed]
    np.testing.assert_allclose([x.score for x in given], [x.score for x in computed], rtol=1e-5)
