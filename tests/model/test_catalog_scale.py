"""A large catalog: the table maps the store, sampled validation, memory-bounded ranking."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.model.synthetic import cyclic_stream, small_config
from xsmoe.model import evaluate, item_tower
from xsmoe.model.evaluate import (
    model_scorer,
    rank_cases,
    ranking_batch,
    restrict_cases,
    sampled_ranks,
    sampled_rows,
)
from xsmoe.model.features import FeatureStore, ModalityRows, ModalitySpec
from xsmoe.model.item_tower import ItemTable
from xsmoe.model.recommender import Recommender
from xsmoe.model.streaming import ProtocolConfig, StreamingProtocol
from xsmoe.model.train import TrainConfig, train_window

pytestmark = pytest.mark.timeout(120)

SPEC = ModalitySpec({"model": "tiny"}, n_layers=3, hidden=16)


def _store(path: Path, n: int) -> tuple[FeatureStore, np.ndarray]:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(n, 3, 16)).astype(np.float32)
    store = FeatureStore.create(path, {"text": SPEC})
    store.append([f"i{k}" for k in range(n)], {"text": ModalityRows(feats, np.ones(n, bool))})
    return store, feats


def _protocol(n_items: int = 60) -> tuple[StreamingProtocol, ItemTable]:
    table, inter = cyclic_stream(n_items=n_items, n_users=60)
    p = StreamingProtocol(
        inter, {str(i): i for i in range(len(table))}, len(table), ProtocolConfig(n_windows=3)
    )
    return p, table


def test_the_table_maps_the_store_instead_of_copying_it(tmp_path: Path) -> None:
    store, feats = _store(tmp_path / "s", 700)
    table = ItemTable.from_store(store)
    mapped = np.frombuffer(table.maps["text"].mapping, np.float32)
    assert np.shares_memory(table.features["text"].numpy(), mapped)
    # the model's dtype and device already: `to` keeps the very same mapped tensors
    assert table.to(torch.device("cpu"), torch.float32).features["text"] is table.features["text"]
    rows = torch.tensor([5, 0, 699, 5])
    np.testing.assert_array_equal(table.take(rows).features["text"].numpy(), feats[rows.numpy()])


def test_scattered_rows_of_a_large_mapped_table_are_read_not_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, feats = _store(tmp_path / "s", 700)
    table = ItemTable.from_store(store)
    rows = torch.tensor([699, 3, 4, 5, 3, 0, 698, 100])  # runs, repeats, both ends
    mapped = table.take(rows).features["text"]
    monkeypatch.setattr(item_tower, "PREAD_ABOVE_BYTES", 0)  # as a million-item table
    read = table.take(rows).features["text"]
    assert not np.shares_memory(read.numpy(), np.frombuffer(table.maps["text"].mapping, np.uint8))
    assert torch.equal(read, mapped)
    np.testing.assert_array_equal(read.numpy(), feats[rows.numpy()])


def test_a_pass_over_the_table_gives_its_pages_back_and_reads_the_same(tmp_path: Path) -> None:
    store, feats = _store(tmp_path / "s", 700)
    mapped = ItemTable.from_store(store)
    in_ram = ItemTable(
        {"text": torch.from_numpy(feats.copy())}, {"text": torch.ones(700, dtype=torch.bool)}
    )
    model = Recommender(small_config()).eval()
    first = model.item_embeddings(mapped, batch_size=64)  # each batch released after use
    again = model.item_embeddings(mapped, batch_size=64)  # pages fault back in, same bytes
    reference = model.item_embeddings(in_ram, batch_size=64)
    assert first.shape == (700, 32)
    assert torch.equal(first, reference) and torch.equal(again, reference)
    mapped.release()  # the whole table: still readable
    np.testing.assert_array_equal(mapped.features["text"][699].numpy(), feats[699])


def test_sampled_validation_equals_exact_when_the_sample_covers_the_catalog() -> None:
    p, table = _protocol()
    model = Recommender(small_config()).eval()
    cases, known = p.val_cases(1), p.known_upto(1)
    rng = np.random.default_rng(0)
    assert sampled_rows(cases, known, int(known.sum()), rng) is None  # exact, as before
    exact = rank_cases(model_scorer(model, table), cases, known)
    every = np.arange(len(table))
    np.testing.assert_array_equal(sampled_ranks(model, table, cases, known, every), exact)
    config = replace(TrainConfig(), max_epochs=2, batch_size=16, val_sample=len(table))
    report = train_window(model, table, p.train_sequences(1), cases, known, config)
    assert report.val_items == int(known.sum())


def test_a_sampled_ranking_holds_every_case_row_and_never_ranks_a_target_lower() -> None:
    p, table = _protocol(n_items=300)
    model = Recommender(small_config()).eval()
    cases, known = p.val_cases(1), np.ones(len(table), bool)
    rows = sampled_rows(cases, known, 40, np.random.default_rng(0))
    assert rows is not None and np.all(np.diff(rows) > 0)
    needed = np.unique(np.concatenate([cases.targets, *cases.inputs, *cases.exclude]))
    assert np.isin(needed, rows).all() and len(rows) == len(needed) + 40
    sub = restrict_cases(cases, rows)
    np.testing.assert_array_equal(rows[sub.targets], cases.targets)
    sampled = sampled_ranks(model, table, cases, known, rows)
    full = rank_cases(model_scorer(model, table), cases, known)
    assert (sampled[:, 0] <= full[:, 0]).all()  # fewer items can only score above it
    assert (sampled[:, 0] < full[:, 0]).any()  # and the sample did drop some


def test_a_sampled_window_trains_and_validates_on_a_catalog_past_the_sample() -> None:
    p, table = _protocol(n_items=300)
    model = Recommender(small_config())
    known = np.ones(len(table), bool)
    config = replace(TrainConfig(), max_epochs=3, batch_size=16, val_sample=50, loss="inbatch")
    report = train_window(model, table, p.train_sequences(1), p.val_cases(1), known, config)
    assert 50 < report.val_items < len(table)
    assert 0.0 <= report.best_val_ndcg <= 1.0 and report.epochs == 3


def test_ranking_batches_sized_by_the_catalog_give_the_same_ranks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p, table = _protocol()
    model = Recommender(small_config()).eval()
    cases, known = p.val_cases(1), p.known_upto(1)
    score = model_scorer(model, table)
    unbatched = rank_cases(score, cases, known, batch_size=len(cases))
    assert ranking_batch(2**20) == 16 and ranking_batch(1682) == 512
    monkeypatch.setattr(evaluate, "SCORE_ELEMENTS", 3 * len(table))  # 3 cases a batch
    assert ranking_batch(len(table)) == 3
    np.testing.assert_array_equal(rank_cases(score, cases, known), unbatched)
