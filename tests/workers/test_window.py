from __future__ import annotations

import time

import numpy as np

from xsmoe.common.events import FeedbackEvent
from xsmoe.workers.settings import WorkerOptions
from xsmoe.workers.trainer import CONTEXT, GATE, TRAIN, VALIDATE, window_data
from xsmoe.workers.window import WindowBuffer


def _event(user: str, item: str, kind: str = "click", event_id: str | None = None) -> FeedbackEvent:
    return FeedbackEvent(event_id=event_id, user_id=user, item_id=item, type=kind)  # type: ignore[arg-type]


def test_a_window_closes_on_count_or_age_and_dedupes() -> None:
    buf = WindowBuffer(max_events=3, max_seconds=60)
    assert not buf.ready()
    buf.add("1-0", _event("u", "a", event_id="e1"))
    buf.add("1-0", _event("u", "a", event_id="e1"))  # same entry delivered twice
    buf.add("2-0", _event("u", "b", event_id="e1"))  # same event id, new entry
    buf.add("3-0", _event("u", "c"))
    assert len(buf) == 2 and not buf.ready()
    assert buf.stream_ids() == ["1-0", "2-0", "3-0"]  # the duplicate is acked with it
    buf.add("10-0", _event("u", "d"))
    assert buf.ready()
    aged = WindowBuffer(max_events=100, max_seconds=0.05)
    aged.add("1-0", _event("u", "a"))
    time.sleep(0.06)
    assert aged.ready()
    assert [s for s, _ in WindowBuffer(5, 5).ordered()] == []


def test_window_data_splits_in_time_and_puts_context_first() -> None:
    row_of = {f"i{k}": k for k in range(20)}
    events = [_event(f"u{k % 2}", f"i{k}") for k in range(20)]
    events.append(_event("u0", "i3", "dislike"))  # not a positive: not trained on
    events.append(_event("u1", "ghost"))
    opts = WorkerOptions(consumer="t", val_fraction=0.15, gate_fraction=0.15, context=2)
    data, unknown = window_data(events, row_of, {"u0": ["i9", "i10", "i11"], "u1": []}, opts)
    assert unknown == ["ghost"]
    assert list(data.phase[:2]) == [CONTEXT, CONTEXT] and list(data.rows[:2]) == [10, 11]
    window = data.phase[2:]
    assert list(window) == [TRAIN] * 14 + [VALIDATE] * 3 + [GATE] * 3  # 20 positives in order
    gate = data.cases((GATE,), GATE, 10)
    assert sorted(gate.targets.tolist()) == [17, 18, 19]
    # A target's input is the items before it, context included.
    first_val = data.cases((VALIDATE,), VALIDATE, 10)
    u0_case = first_val.users.index("u0")
    assert first_val.inputs[u0_case][0] in (10, 11) or len(first_val.inputs[u0_case]) == 10
    assert np.all(data.rows[data.phase == TRAIN] < 14)
    # Scored as serving: the dislike is excluded, and the history is as long as asked.
    assert data.disliked == {"u0": {3}}
    assert all(3 in seen for u, seen in zip(gate.users, gate.exclude, strict=True) if u == "u0")
    long = data.cases((GATE,), GATE, 50)
    assert max(len(x) for x in long.inputs) > max(len(x) for x in gate.inputs)
