"""The run-time delta: exact over the added items, and immutable for its readers."""

from __future__ import annotations

import faiss
import numpy as np

from xsmoe.model.catalog_index import CatalogIndex
from xsmoe.model.delta_index import DeltaIndex


def _unit(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _catalog(rng: np.random.Generator, n: int = 30) -> CatalogIndex:
    vectors = _unit(rng, n)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return CatalogIndex.over([f"m{i}" for i in range(n)], vectors, index)


def test_search_equals_brute_force_with_deletions_and_exclusions() -> None:
    rng = np.random.default_rng(1)
    catalog = _catalog(rng)
    added = _unit(rng, 300)
    for lo in range(0, 300, 7):  # many small adds: the storage grows several times
        ids = [f"a{j}" for j in range(lo, min(lo + 7, 300))]
        catalog = catalog.with_items(ids, added[lo : lo + len(ids)])
    catalog = catalog.without([f"a{j}" for j in range(0, 300, 3)] + ["m4"])
    everything = np.concatenate([catalog.main_vectors, added])
    for q in _unit(rng, 20):
        excluded = {int(r) for r in rng.integers(0, len(everything), 25)}
        hits = catalog.search(q, 15, excluded)
        scores = everything @ q
        allowed = [r for r in range(len(everything)) if r not in excluded | catalog.deleted]
        expected = sorted(allowed, key=lambda r: -scores[r])[:15]
        assert [h.row for h in hits] == expected
        assert np.allclose([h.score for h in hits], scores[expected], atol=1e-5)
    assert catalog.item_id(30 + 5) == "a5" and catalog.row_of("a5") == 35
    assert np.array_equal(catalog.vectors([35, 2]), np.stack([added[5], everything[2]]))


def test_an_older_value_is_unchanged_by_later_adds() -> None:
    rng = np.random.default_rng(2)
    first = _catalog(rng).with_items(["a0", "a1"], _unit(rng, 2))
    rows_before = first.added.rows().copy()
    q = _unit(rng, 1)[0]
    before = first.search(q, 40)
    later = first
    for j in range(200):  # grows the shared storage past its first capacity
        later = later.with_items([f"b{j}"], _unit(rng, 1))
    assert len(first.added) == 2 and list(first.added_ids) == ["a0", "a1"]
    assert "b0" not in first and first.row_of("b5") is None
    assert np.array_equal(first.added.rows(), rows_before)
    assert first.search(q, 40) == before
    assert len(later.added) == 202 and "b199" in later


def test_a_branch_does_not_see_the_other_branchs_items() -> None:
    rng = np.random.default_rng(3)
    base = DeltaIndex().with_items(["a"], _unit(rng, 1))
    left = base.with_items(["l"], _unit(rng, 1))
    right = base.with_items(["r"], _unit(rng, 1))  # base is no longer the newest: a copy
    assert list(left.ids) == ["a", "l"] and list(right.ids) == ["a", "r"]
    assert left.position("r") is None and right.position("l") is None
    assert not np.array_equal(left.rows()[1], right.rows()[1])


def test_repeated_and_present_ids_are_skipped() -> None:
    rng = np.random.default_rng(4)
    vectors = _unit(rng, 3)
    delta = DeltaIndex().with_items(["x", "x", "y"], vectors)
    assert list(delta.ids) == ["x", "y"] and np.array_equal(delta.rows()[0], vectors[0])
    assert delta.with_items(["x"], vectors[:1]) is delta
