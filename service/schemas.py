"""Request and response bodies of the /v1 API, with the examples shown in the docs
(the catalog's are in item_schemas)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from xsmoe.common.events import FeedbackEvent, Identifier
from xsmoe.service.item_schemas import MAX_TAGS, ItemTag, Source

MAX_K = 200
MAX_DEPTH = 1000  # k + offset: how far down a ranking a client may page
VERSION_PATTERN = r"^v\d{6,}$"
# The events a feedback request may carry: XSMOE_API__MAX_EVENTS, set for each
# request by the app (a schema is built once, a deployment's limit is read at start).
MAX_EVENTS: ContextVar[int] = ContextVar("max_events", default=1000)


class RecommendFilter(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"tags_any": ["Comedy"], "tags_none": ["Horror"]}]},
    )

    tags_any: list[ItemTag] | None = Field(
        None,
        min_length=1,  # an empty "any of" matches nothing: a mistake, not a request
        max_length=MAX_TAGS,
        description="the item has at least one of these tags",
    )
    tags_none: list[ItemTag] | None = Field(
        None, max_length=MAX_TAGS, description="the item has none of these tags"
    )
    source: Source | None = Field(None, description="snapshot items or run-time items only")


class RecommendRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"user_id": "196", "k": 10},
                {"item_ids": ["242", "302", "377"], "k": 5, "exclude_item_ids": ["51"]},
                {
                    "user_id": 196,
                    "k": 10,
                    "offset": 10,
                    "filter": {"tags_any": ["Comedy"], "source": "snapshot"},
                    "model_version": "v000002",
                },
            ]
        },
    )

    user_id: Identifier | None = Field(None, description="use this user's stored history")
    item_ids: list[Identifier] = Field(
        [], max_length=200, description="recent items, newest last (after the stored history)"
    )
    k: int = Field(10, ge=1, le=MAX_K, description=f"how many items (1..{MAX_K})")
    offset: int = Field(
        0, ge=0, le=MAX_DEPTH, description=f"skip this many first (k + offset <= {MAX_DEPTH})"
    )
    exclude_seen: bool = Field(True, description="never return items in the history")
    exclude_item_ids: list[Identifier] = Field([], max_length=1000, description="never return")
    filter: RecommendFilter | None = Field(None, description="only items that pass this")
    model_version: str | None = Field(
        None,
        pattern=VERSION_PATTERN,
        description="ask this snapshot version instead of the serving one (e.g. a candidate)",
    )

    @model_validator(mode="after")
    def _depth(self) -> RecommendRequest:
        if self.k + self.offset > MAX_DEPTH:
            raise ValueError(f"k + offset is {self.k + self.offset}; at most {MAX_DEPTH}")
        return self


class ScoredItem(BaseModel):
    item_id: str
    score: float


class RecommendationList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [{"item_id": "50", "score": 3.2}, {"item_id": "181", "score": 3.1}],
                    "model_version": "v000001",
                    "fallback": None,
                    "warnings": [],
                }
            ]
        }
    )

    items: list[ScoredItem]
    model_version: str
    fallback: Literal["popular"] | None = Field(
        None, description='"popular" when there was no usable history'
    )
    warnings: list[str] = Field([], description="e.g. unknown item ids that were ignored")


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[FeedbackEvent] = Field(
        ..., min_length=1, description="1 .. XSMOE_API__MAX_EVENTS (default 1000) events"
    )

    @field_validator("events", mode="before")
    @classmethod
    def _at_most(cls, value: Any) -> Any:
        limit = MAX_EVENTS.get()  # counted before any event is parsed
        if isinstance(value, list) and len(value) > limit:
            raise ValueError(
                f"{len(value)} events; at most {limit} per request (XSMOE_API__MAX_EVENTS)"
            )
        return value


def _feedback_kind(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "events" in value else "event"


FeedbackPayload = Annotated[
    Annotated[FeedbackBatch, Tag("batch")] | Annotated[FeedbackEvent, Tag("event")],
    Discriminator(_feedback_kind),
]


class AcceptedEvent(BaseModel):
    event_id: str
    stream_id: str
    duplicate: bool = Field(description="this event_id was accepted before; not appended again")


class FeedbackAccepted(BaseModel):
    accepted: int = Field(description="events appended now")
    duplicates: int = Field(description="events whose event_id was already accepted")
    events: list[AcceptedEvent]


class UserOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"user_id": "196", "history": ["242", "302"], "disliked": ["51"],
                 "pending_events": 3}
            ]
        }
    )  # fmt: skip

    user_id: str
    history: list[str] = Field(description="positive items, oldest first, newest last")
    disliked: list[str]
    pending_events: int = Field(description="events accepted, not yet trained on")
    pending_events_exact: bool = Field(
        True,
        description="false: the untrained stream is longer than a lookup reads "
        "(10,000 entries); pending_events is then a lower bound",
    )


class UserErased(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "196",
                    "erased": {
                        "history": 12,
                        "disliked": 1,
                        "trained_context": 10,
                        "pending_events": 2,
                        "dead_letters": 0,
                    },
                    "retained": "Model weights and item vectors of snapshots already trained "
                    "on this user's events keep what they learned ...",
                }
            ]
        }
    )

    user_id: str
    erased: dict[str, int] = Field(description="what was removed, by kind")
    retained: str = Field(description="what cannot be removed, and why")


class ModelVersion(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": "v000002",
                    "parent": "v000001",
                    "created_at": 1767322800.0,
                    "serving": True,
                    "gate": {"outcome": "promoted", "reason": "NDCG@10 0.21 >= 0.20"},
                    "metrics": {"val_ndcg@10": 0.21},
                }
            ]
        }
    )

    version: str
    parent: str | None
    created_at: float | None
    serving: bool
    gate: dict[str, Any]
    metrics: dict[str, Any]


class ModelList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "serving": "v000002",
                    "versions": [
                        {
                            "version": "v000002",
                            "parent": "v000001",
                            "created_at": 1767322800.0,
                            "serving": True,
                            "gate": {"outcome": "promoted", "reason": "NDCG@10 0.21 >= 0.20"},
                            "metrics": {"val_ndcg@10": 0.21},
                        }
                    ],
                }
            ]
        }
    )

    serving: str | None
    versions: list[ModelVersion] = Field(description="newest first")


class ModelInfo(BaseModel):
    version: str
    parent: str | None
    created_at: float | None
    experts: dict[str, list[int]] = Field(description="modality -> experts per stage")
    frozen: dict[str, list[int]] = Field(description="modality -> frozen experts per stage")
    utilization: dict[str, Any] = Field(
        description="modality -> stage -> share of routed output per slot (backbone first)"
    )
    metrics: dict[str, Any] = Field(description="offline metrics and the gate's decision")
    gate: dict[str, Any] = Field(description="how this version was gated")
    online: dict[str, dict[str, float]] = Field(
        description="prequential HR@10 / NDCG@10 per version that served (from the worker)"
    )
    items_indexed: int
    items_added_since: int = Field(description="run-time items indexed beside the snapshot")
    index: dict[str, Any] = Field(
        description="the snapshot's serving index as its writer built and measured it: kind "
        "(flat: exact; ivf_flat), params, recall@10 against exact search, queries, bytes"
    )
    loaded_at: float
    swaps: int
    refused: dict[str, str] = Field(description="versions this process refused, and why")


class RollbackRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"version": "v000001"}]}
    )

    version: str = Field(..., pattern=VERSION_PATTERN, description="an existing snapshot version")


class RollbackDone(BaseModel):
    version: str
    previous: str | None
