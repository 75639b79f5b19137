"""When a refused version is tried again: 1, 2, 4 ... seconds, capped, per version."""

from __future__ import annotations

from xsmoe.service.retry import Backoff


def test_backoff_doubles_up_to_its_cap_per_version_and_clears() -> None:
    now = [100.0]
    backoff = Backoff(first=1.0, cap=4.0, clock=lambda: now[0])
    assert backoff.due("v000002")
    assert [backoff.failed("v000002") for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    assert not backoff.due("v000002") and backoff.due("v000003")  # versions apart
    now[0] += 3.9
    assert not backoff.due("v000002")
    now[0] += 0.1
    assert backoff.due("v000002")
    backoff.clear("v000002")
    assert backoff.failed("v000002") == 1.0  # served once: starts over
