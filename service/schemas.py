"""Request and response bodies of the /v1 API, with the examples shown in the docs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from xsmoe.common.events import FeedbackEvent, Identifier

MAX_K = 200


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
    exclude_seen: bool = Field(True, description="never return items in the history")
    exclude_item_ids: list[Identifier] = Field([], max_length=1000, description="never return")


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

    events: list[FeedbackEvent] = Field(..., min_length=1, max_length=1000)


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


class ItemCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"item_id": "new-42", "text": "Space Station (2026). Genres: Sci-Fi"}]
        },
    )

    item_id: Identifier
    text: str | None = Field(None, max_length=20_000, description="title, description, ...")
    image_base64: str | None = Field(None, description="a JPEG/PNG/WebP image, base64")

    @model_validator(mode="after")
    def _some_content(self) -> ItemCreate:
        if not (self.text and self.text.strip()) and not self.image_base64:
            raise ValueError("give text or image_base64 (an item needs content to be scored)")
        return self


class ItemOut(BaseModel):
    item_id: str
    source: Literal["snapshot", "runtime"]
    indexed: bool = Field(description="recommendable by the serving model right now")
    modalities: list[str] = Field(description="modalities with features")
    text: str | None = None
    created_at: float | None = None
    model_version: str
    warnings: list[str] = []


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

    version: str = Field(..., pattern=r"^v\d{6,}$", description="an existing snapshot version")


class RollbackDone(BaseModel):
    version: str
    previous: str | None
