"""train_and_gate on a catalog past the validation sample: the vectors it hands over."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.model.synthetic import cyclic_stream, small_config
from xsmoe.common.events import FeedbackEvent
from xsmoe.model.recommender import Recommender
from xsmoe.workers.settings import WorkerOptions
from xsmoe.workers.trainer import GATE, TRAIN, VALIDATE, train_and_gate, window_data

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("val_sample", [50, 10_000])
def test_the_window_hands_over_the_gate_embeddings_and_real_queries(val_sample: int) -> None:
    table, inter = cyclic_stream(n_items=300, n_users=60)
    events = [
        FeedbackEvent(event_id=f"e{i}", user_id=str(u), item_id=str(item))
        for i, (u, item) in enumerate(zip(inter.user_ids, inter.item_ids, strict=True))
    ]
    row_of = {str(i): i for i in range(len(table))}
    opts = WorkerOptions(
        consumer="t", max_epochs=2, device="cpu", val_sample=val_sample, online_cases=100
    )
    data, unknown = window_data(events, row_of, {}, opts)
    assert not unknown
    serving = Recommender(small_config())
    result = train_and_gate(serving, table, data, opts, seed=0)
    assert result.candidate is not None and result.report is not None
    assert result.item_vectors is not None and result.query_vectors is not None
    # the gate's candidate embeddings are what its snapshot serves: every row, in order
    expected = result.candidate.item_embeddings(table).numpy()
    np.testing.assert_array_equal(result.item_vectors, expected)
    assert result.item_vectors.dtype == np.float32
    gate_cases = result.metrics["gate"]["candidate"]["cases"]
    assert result.query_vectors.shape == (min(gate_cases, 1000), 32)
    sampled = len(table) > val_sample
    assert (result.report.val_items < len(table)) == sampled
    assert result.metrics["val_items"] == result.report.val_items
    # the online score ranks every case, or a sample of them past val_sample items
    window_cases = len(data.cases((TRAIN, VALIDATE, GATE), GATE, serving.config.user.max_len))
    assert result.online["cases"] == (100 if sampled else window_cases)
    assert ("of_cases" in result.online) == sampled
    assert torch.isfinite(torch.from_numpy(result.query_vectors)).all()
