"""The training window: what it returns is what it validated; growth happens first."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tests.model.synthetic import cyclic_stream, small_config
from xsmoe.model.recommender import Recommender
from xsmoe.model.streaming import ProtocolConfig, StreamingProtocol
from xsmoe.model.train import TrainConfig, train_window, validation_ndcg
from xsmoe.model.user_encoder import UserEncoder, UserEncoderConfig

pytestmark = pytest.mark.timeout(120)


def _protocol() -> tuple[StreamingProtocol, object]:
    table, inter = cyclic_stream(n_users=60)
    p = StreamingProtocol(
        inter, {str(i): i for i in range(len(table))}, len(table), ProtocolConfig(n_windows=3)
    )
    return p, table


@pytest.mark.parametrize("loss", ["full", "inbatch"])
def test_the_returned_model_is_the_validated_model(loss: str) -> None:
    p, table = _protocol()
    model = Recommender(small_config())
    config = replace(TrainConfig(), max_epochs=6, batch_size=16, lr=3e-3, loss=loss)  # type: ignore[arg-type]
    for t in (0, 1):  # the second window grows the model before it trains
        report = train_window(
            model,
            table,
            p.train_sequences(t),
            p.val_cases(t),
            p.known_upto(t),
            config,  # type: ignore[arg-type]
        )
        again = validation_ndcg(model, table, p.val_cases(t), p.known_upto(t))  # type: ignore[arg-type]
        assert again == pytest.approx(report.best_val_ndcg, abs=1e-9)
        assert report.loss == loss
    assert model.current_config().experts == {"text": (2, 2)}
    assert model.config.trained_windows == 2


def test_growth_happens_before_training_not_after() -> None:
    p, table = _protocol()
    model = Recommender(small_config())
    config = replace(TrainConfig(), max_epochs=2, batch_size=16)
    report = train_window(
        model, table, p.train_sequences(0), p.val_cases(0), p.known_upto(0), config
    )  # type: ignore[arg-type]
    assert report.experts == {"text": (1, 1)} and report.pruned == {}  # a fresh model does not grow
    before = model.current_config().experts
    report = train_window(
        model, table, p.train_sequences(1), p.val_cases(1), p.known_upto(1), config
    )  # type: ignore[arg-type]
    assert before == {"text": (1, 1)} and report.experts == {"text": (2, 2)}
    assert set(report.pruned) == {"text"}  # prune ran (with last window's usage) first
    # Without expansion (xsmoe-fixed) nothing grows.
    fixed = Recommender(small_config())
    off = replace(config, expand=False)
    for t in (0, 1):
        train_window(fixed, table, p.train_sequences(t), p.val_cases(t), p.known_upto(t), off)  # type: ignore[arg-type]
    assert fixed.current_config().experts == {"text": (1, 1)}


def test_position_embeddings_are_small_next_to_item_vectors() -> None:
    torch.manual_seed(0)
    encoder = UserEncoder(UserEncoderConfig(dim=128))
    norms = encoder.positions.weight.detach().norm(dim=-1)
    # N(0, 0.02): norm ~0.02 * sqrt(128) = 0.23, not ~11 as with N(0, 1)
    assert float(norms.mean()) == pytest.approx(0.02 * 128**0.5, rel=0.15)


def test_unknown_loss_is_refused() -> None:
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainConfig(loss="sampled")  # type: ignore[arg-type]
