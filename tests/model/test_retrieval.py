from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from model.features import ModalitySpec
from model.recommender import Recommender
from model.retrieval import Retriever
from model.snapshot import load_snapshot, save_snapshot
from tests.model.synthetic import cyclic_stream, small_config


def _retriever(tmp_path: Path) -> Retriever:
    torch.manual_seed(0)
    table, _ = cyclic_stream()
    model = Recommender(small_config()).eval()
    embeddings = model.item_embeddings(table).numpy()
    ids = [f"i{r}" for r in range(len(table))]
    specs = {"text": ModalitySpec({"model": "synthetic"}, 3, 16)}
    path = save_snapshot(tmp_path, model, ids, embeddings, specs)
    return Retriever(load_snapshot(path), popular_ids=["i5", "i7", "i9", "nope"])


def test_top_k_matches_brute_force_and_excludes_seen(tmp_path: Path) -> None:
    r = _retriever(tmp_path)
    history = ["i1", "i2", "i3"]
    result = r.recommend(history, k=10, exclude=["i40"])
    vector, _ = r.user_vector(history)
    assert vector is not None
    scores = r.snapshot.embeddings @ vector
    banned = {1, 2, 3, 40}
    expected = [int(i) for i in np.argsort(-scores) if int(i) not in banned][:10]
    assert [x.item_id for x in result.items] == [f"i{i}" for i in expected]
    np.testing.assert_allclose([x.score for x in result.items], scores[expected], rtol=1e-5)
    assert result.fallback is None and result.unknown_ids == []
    with_seen = r.recommend(history, k=60, exclude_seen=False)
    assert {"i1", "i2", "i3"} <= {x.item_id for x in with_seen.items}
    assert r.snapshot.index.ntotal == 60  # the shared index was not touched


def test_unknown_ids_are_reported_and_empty_history_falls_back(tmp_path: Path) -> None:
    r = _retriever(tmp_path)
    result = r.recommend(["ghost", "i4"], k=3)
    assert result.unknown_ids == ["ghost"] and len(result.items) == 3
    cold = r.recommend(["ghost"], k=2, exclude=["i5"])
    assert cold.fallback == "popular"
    assert [x.item_id for x in cold.items] == ["i7", "i9"]
    assert len(r.recommend([], k=100).items) == 3  # only the known popular items
