"""The feedback event: what clients post, what the stream carries, what workers read."""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from xsmoe.model.ids import ID_MAX, ID_PATTERN, ID_RULE, check_id

EventType = Literal["click", "view", "purchase", "like", "dislike"]
# Positive feedback extends the user's history (and trains the model); a dislike
# only removes the item from that user's recommendations.
POSITIVE: frozenset[str] = frozenset({"click", "view", "purchase", "like"})


def _id_from_number(value: Any) -> Any:
    """A JSON integer id (MovieLens' 50, a numeric SKU) is that id's decimal text; a
    float or a bool is left alone, to be refused as not a string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Identifier = Annotated[
    str,
    BeforeValidator(_id_from_number),
    Field(
        min_length=1,
        max_length=ID_MAX,
        description=ID_RULE + "; a JSON integer is taken as its decimal text",
        json_schema_extra={"pattern": ID_PATTERN},
    ),
    AfterValidator(check_id),
]


class FeedbackEvent(BaseModel):
    """One piece of feedback from a user about an item."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"event_id": "e-1001", "user_id": "196", "item_id": "242", "type": "click"}
            ]
        },
    )

    event_id: Identifier | None = Field(
        None, description="client id for idempotency: a repeated id is accepted once"
    )
    user_id: Identifier
    item_id: Identifier
    type: EventType = "click"
    ts: float | None = Field(
        None,
        ge=0,
        validation_alias=AliasChoices("ts", "timestamp"),
        description="event time: seconds since the epoch or an ISO-8601 time "
        "(2026-01-02T03:04:05Z; without an offset: UTC); also accepted as `timestamp`",
    )

    @field_validator("ts", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> Any:
        return parse_time(value) if isinstance(value, str) else value

    @field_validator("ts")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number of seconds since the epoch")
        return value


def parse_time(value: str) -> float:
    """Epoch seconds from numeric text or an ISO-8601 time; a time without an offset is
    UTC (a server's local zone is no part of the event)."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value[:40]!r} is neither epoch seconds nor an ISO-8601 time "
            "(e.g. 1767322800 or 2026-01-02T03:00:00Z)"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def stream_fields(event: FeedbackEvent, received_at: float | None = None) -> dict[str, str]:
    """The stream entry of an accepted event; ids and times are always filled in."""
    now = time.time() if received_at is None else received_at
    return {
        "event_id": event.event_id or uuid.uuid4().hex,
        "user_id": event.user_id,
        "item_id": event.item_id,
        "type": event.type,
        "ts": repr(event.ts if event.ts is not None else now),
        "received_at": repr(now),
    }


def from_stream_fields(fields: dict[str, str]) -> FeedbackEvent:
    """Parse a stream entry back; raises pydantic.ValidationError on a malformed one."""
    return FeedbackEvent(
        event_id=fields.get("event_id"),
        user_id=fields.get("user_id", ""),
        item_id=fields.get("item_id", ""),
        type=fields.get("type", ""),
        ts=fields.get("ts"),  # pydantic parses the number
    )
