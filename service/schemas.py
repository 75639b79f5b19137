"""Request and response bodies of the /v1 API, with the examples shown in the docs."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SkipValidation,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)

from xsmoe.common.events import FeedbackEvent, Identifier

MAX_K = 200
MAX_DEPTH = 1000  # k + offset: how far down a ranking a client may page
MAX_TAGS = 32
MAX_BATCH_ITEMS = 1000
VERSION_PATTERN = r"^v\d{6,}$"
# The events a feedback request may carry: XSMOE_API__MAX_EVENTS, set for each
# request by the app (a schema is built once, a deployment's limit is read at start).
MAX_EVENTS: ContextVar[int] = ContextVar("max_events", default=1000)

ItemTag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Source = Literal["snapshot", "runtime"]
Change = Literal["created", "updated", "unchanged"]


class RecommendFilter(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"tags_any": ["Comedy"], "tags_none": ["Horror"]}]},
    )

    tags_any: list[ItemTag] | None = Field(
        None, max_length=MAX_TAGS, description="the item has at least one of these tags"
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


class ItemPut(BaseModel):
    """An item's content and tags (PUT /v1/items/{item_id})."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "Space Station (2026). Genres: Sci-Fi", "tags": ["Sci-Fi"]},
                {"tags": ["Comedy", "staff-pick"]},
            ]
        },
    )

    text: str | None = Field(None, max_length=20_000, description="title, description, ...")
    image_base64: str | None = Field(None, description="a JPEG/PNG/WebP image, base64")
    tags: list[ItemTag] | None = Field(
        None,
        max_length=MAX_TAGS,
        description=f"up to {MAX_TAGS} labels for filters (1-64 characters each); "
        "omitted: kept as they are",
    )


class ItemCreate(ItemPut):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "item_id": "new-42",
                    "text": "Space Station (2026). Genres: Sci-Fi",
                    "tags": ["Sci-Fi"],
                }
            ]
        },
    )

    item_id: Identifier

    @model_validator(mode="after")
    def _some_content(self) -> ItemCreate:
        if not (self.text and self.text.strip()) and not self.image_base64:
            raise ValueError("give text or image_base64 (an item needs content to be scored)")
        return self


class BatchItem(ItemPut):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"item_id": "new-43", "text": "Moon Base (2027)"}]},
    )

    item_id: Identifier


class ItemBatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"item_id": "new-43", "text": "Moon Base (2027)", "tags": ["Sci-Fi"]},
                        {"item_id": "new-44", "text": "Deep Sea (2027)"},
                    ]
                }
            ]
        },
    )

    # Each item is validated on its own (a bad one fails alone, with its own error),
    # so the list holds the raw objects; the schema still documents BatchItem.
    items: list[SkipValidation[BatchItem]] = Field(
        ..., min_length=1, max_length=MAX_BATCH_ITEMS, description=f"1..{MAX_BATCH_ITEMS} items"
    )


class ItemError(BaseModel):
    error: str
    detail: str
    fields: list[dict[str, str]] | None = None


class BatchItemResult(BaseModel):
    item_id: str | None = Field(description="null when the item had no valid item_id")
    status: Literal["created", "updated", "unchanged", "failed"]
    error: ItemError | None = None


class BatchResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "created": 1,
                    "updated": 0,
                    "unchanged": 0,
                    "failed": 1,
                    "results": [
                        {"item_id": "new-43", "status": "created", "error": None},
                        {
                            "item_id": "m1",
                            "status": "failed",
                            "error": {
                                "error": "conflict",
                                "detail": "item 'm1' comes from the snapshot ...",
                            },
                        },
                    ],
                }
            ]
        }
    )

    created: int
    updated: int
    unchanged: int
    failed: int
    results: list[BatchItemResult] = Field(description="one per item, in the request's order")


class ItemOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "item_id": "50",
                    "source": "snapshot",
                    "indexed": True,
                    "modalities": ["text"],
                    "text": "Star Wars (1977). Genres: Action, Adventure, Romance, Sci-Fi, War",
                    "tags": ["Action", "Adventure", "Romance", "Sci-Fi", "War"],
                    "created_at": None,
                    "updated_at": None,
                    "model_version": "v000001",
                    "change": None,
                    "warnings": [],
                }
            ]
        }
    )

    item_id: str
    source: Source
    indexed: bool = Field(description="recommendable by the serving model right now")
    modalities: list[str] = Field(description="modalities with features")
    text: str | None = None
    tags: list[str] = []
    created_at: float | None = None
    updated_at: float | None = None
    model_version: str
    change: Change | None = Field(None, description="what a write did; null on reads")
    warnings: list[str] = []


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: done")


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


class UserErased(BaseModel):
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
