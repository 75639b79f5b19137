"""A window of feedback: closes after N events or T seconds, whichever comes first."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from xsmoe.common.events import FeedbackEvent
from xsmoe.workers.consumer import stream_order


@dataclass
class WindowBuffer:
    max_events: int
    max_seconds: float
    events: dict[str, FeedbackEvent] = field(default_factory=dict)  # stream id -> event
    duplicates: list[str] = field(default_factory=list)  # stream ids of repeated event ids
    opened_at: float | None = None
    _event_ids: set[str] = field(default_factory=set)

    def add(self, stream_id: str, event: FeedbackEvent) -> None:
        if stream_id in self.events or stream_id in self.duplicates:
            return  # the same entry delivered twice (pending re-read, claim)
        if self.opened_at is None:
            self.opened_at = time.monotonic()
        if event.event_id is not None and event.event_id in self._event_ids:
            self.duplicates.append(stream_id)  # acked with the window, trained once
            return
        if event.event_id is not None:
            self._event_ids.add(event.event_id)
        self.events[stream_id] = event

    def __len__(self) -> int:
        return len(self.events)

    def ready(self) -> bool:
        if not self.events:
            return False
        aged = self.opened_at is not None and time.monotonic() - self.opened_at >= self.max_seconds
        return len(self.events) >= self.max_events or aged

    def stream_ids(self) -> list[str]:
        return sorted([*self.events, *self.duplicates], key=stream_order)

    def ordered(self) -> list[tuple[str, FeedbackEvent]]:
        return sorted(self.events.items(), key=lambda kv: stream_order(kv[0]))

    def clear(self) -> None:
        self.events.clear()
        self.duplicates.clear()
        self._event_ids.clear()
        self.opened_at = None
