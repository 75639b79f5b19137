"""The optional warm-item ID residual: learned for trained items, zero for the rest."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.model.synthetic import cyclic_stream, small_config
from xsmoe.model.recommender import Recommender
from xsmoe.model.retrieval import ItemFeatures, embed_features
from xsmoe.model.streaming import ProtocolConfig, StreamingProtocol
from xsmoe.model.train import TrainConfig, train_window

pytestmark = pytest.mark.timeout(120)


def test_residual_moves_only_items_the_window_trained_on() -> None:
    table, inter = cyclic_stream(n_users=40)
    p = StreamingProtocol(
        inter, {str(i): i for i in range(len(table))}, len(table), ProtocolConfig(n_windows=3)
    )
    model = Recommender(replace(small_config(), id_residual_rows=len(table)))
    tower = model.content
    assert tower is not None and tower.id_residual is not None
    assert not tower.id_residual.weight.any()  # starts as pure content
    known = p.known_upto(0)
    config = replace(TrainConfig(), max_epochs=3, batch_size=16)
    train_window(model, table, p.train_sequences(0), p.val_cases(0), known, config)
    moved = tower.id_residual.weight.detach().abs().sum(1) > 0
    # Full softmax: every known item is a candidate; unknown items get no gradient.
    assert moved[torch.from_numpy(known)].all()
    assert not moved[torch.from_numpy(~known)].any()


def test_new_items_are_embedded_from_content_alone() -> None:
    table, _ = cyclic_stream()
    model = Recommender(replace(small_config(), id_residual_rows=len(table))).eval()
    tower = model.content
    assert tower is not None and tower.id_residual is not None
    with torch.no_grad():
        tower.id_residual.weight.normal_()
    new = ItemFeatures(
        {"text": table.features["text"][:3].numpy()}, {"text": np.ones(3, bool)}
    )  # the same features as catalog rows 0..2, but items the model never saw
    fresh = embed_features(model, new)
    content_only = Recommender(small_config()).eval()
    content_only.load_state_dict(
        {k: v for k, v in model.state_dict().items() if "id_residual" not in k}
    )
    expected = content_only.item_embeddings(replace(table, catalog=False)).numpy()[:3]
    np.testing.assert_allclose(fresh, expected, atol=1e-6)
    catalog = model.item_embeddings(table).numpy()[:3]
    assert not np.allclose(catalog, fresh)  # catalog rows do carry their residual
