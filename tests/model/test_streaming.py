from __future__ import annotations

from dataclasses import replace

import torch

from tests.model.synthetic import cyclic_stream, small_config
from xsmoe.model.data import Interactions
from xsmoe.model.recommender import Recommender
from xsmoe.model.streaming import ProtocolConfig, StreamingProtocol
from xsmoe.model.train import TrainConfig, train_window
from xsmoe.model.variants import run_variant


def _protocol() -> tuple[StreamingProtocol, list[str]]:
    rows = []
    # 3 windows of 6 interactions; item "new" first appears in window 2.
    for w in range(3):
        for k in range(6):
            user = f"u{k % 2}"
            item = "new" if (w == 2 and k == 4) else f"i{w * 6 + k}"
            rows.append((user, item, w * 100.0 + k))
    inter = Interactions.from_rows(rows)
    ids = sorted(set(inter.item_ids))
    protocol = StreamingProtocol(
        inter, {i: r for r, i in enumerate(ids)}, len(ids), ProtocolConfig(n_windows=3, user_core=3)
    )
    return protocol, ids


def test_windows_cases_known_items_and_cold_start() -> None:
    p, ids = _protocol()
    assert [len(w.rows) for w in p.raw] == [6, 6, 6]
    cases = p.test_cases(2)
    assert len(cases) == 2 and all(len(x) == 2 for x in cases.inputs)  # 3 each: 2 in, 1 target
    new_row = ids.index("new")
    assert p.first_window[new_row] == 2
    assert p.known_upto(2)[new_row] and not p.known_upto(1)[new_row]
    assert cases.targets[cases.users.index("u0")] == new_row  # cold item: a target, ranked
    for target, seen in zip(cases.targets, cases.exclude, strict=True):
        assert target not in seen
    # Excluded: the user's items of earlier windows (3 + 3) and the 2 inputs before it.
    u0_rows = {ids.index(f"i{w * 6 + k}") for w in (0, 1) for k in (0, 2, 4)}
    u0_rows |= {ids.index("i12"), ids.index("i14")}
    assert set(cases.exclude[cases.users.index("u0")].tolist()) == u0_rows


def test_val_split_is_the_tail_of_the_window() -> None:
    p, _ = _protocol()
    train = p.train_sequences(0)
    assert sum(len(s) for s in train) == 5  # 85% of 6, rounded
    assert len(p.val_cases(0)) == 1


def test_xsmoe_learns_a_planted_sequence_and_beats_popularity() -> None:
    table, inter = cyclic_stream()
    p = StreamingProtocol(
        inter, {str(i): i for i in range(len(table))}, len(table), ProtocolConfig(n_windows=3)
    )
    config = replace(TrainConfig(), max_epochs=40, batch_size=32, lr=3e-3)
    ours = run_variant("xsmoe", p, table, small_config(), config)
    pop = run_variant("pop", p, table, small_config(), config)
    assert ours["avg"]["hr@10"] > pop["avg"]["hr@10"] + 0.3
    # A fresh model trains its first window as built; it grows before each later one.
    assert [w["experts"]["text"] for w in ours["windows"]] == [[1, 1], [2, 2]]


def test_training_is_seeded_and_deterministic() -> None:
    table, inter = cyclic_stream(n_users=30)
    p = StreamingProtocol(
        inter, {str(i): i for i in range(len(table))}, len(table), ProtocolConfig(n_windows=3)
    )
    config = replace(TrainConfig(), max_epochs=2, batch_size=16)

    def weights() -> dict[str, torch.Tensor]:
        torch.manual_seed(123)  # the same initial weights; training seeds itself
        model = Recommender(small_config())
        train_window(model, table, p.train_sequences(0), p.val_cases(0), p.known_upto(0), config)
        return model.state_dict()

    first, second = weights(), weights()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_content_only_variant_scores_by_history_content_and_never_trains() -> None:
    from xsmoe.model.evaluate import model_scorer
    from xsmoe.model.variants import build_model

    table, inter = cyclic_stream()
    p = StreamingProtocol(
        inter, {str(i): i for i in range(len(table))}, len(table), ProtocolConfig(n_windows=3)
    )
    config = replace(TrainConfig(), max_epochs=2)
    result = run_variant("content-only", p, table, small_config(), config)
    assert result["trainable_params"] == 0 and all(w["epochs"] == 0 for w in result["windows"])
    torch.manual_seed(config.seed)
    model = build_model("content-only", table, small_config())
    assert model is not None and model.config.content_only
    items = model.item_embeddings(table)
    scores = model_scorer(model, table)(torch.tensor([[2, 5]]))
    torch.testing.assert_close(scores[0], items[[2, 5]].mean(0) @ items.T)
