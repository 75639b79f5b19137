"""What the xsmoe API answers, one model per response body.

Unknown fields are ignored and fields newer than the first server release have
defaults, so this client keeps working against an older or a newer server.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Source = Literal["snapshot", "runtime"]
Change = Literal["created", "updated", "unchanged"]


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FieldError(Model):
    field: str = Field(description="the request field at fault, e.g. events[3].item_id")
    message: str = Field(description="what was wrong and what is allowed")


class ErrorBody(Model):
    """Every 4xx/5xx body: a machine code, a sentence, and the fields at fault."""

    error: str
    detail: str
    fields: list[FieldError] = []


class ScoredItem(Model):
    item_id: str
    score: float


class RecommendationList(Model):
    items: list[ScoredItem]
    model_version: str
    fallback: Literal["popular"] | None = None
    warnings: list[str] = []

    @property
    def item_ids(self) -> list[str]:
        return [item.item_id for item in self.items]


class AcceptedEvent(Model):
    event_id: str
    stream_id: str
    duplicate: bool


class FeedbackAccepted(Model):
    accepted: int = Field(description="events appended now")
    duplicates: int = Field(description="events whose event_id was accepted before")
    events: list[AcceptedEvent]


class ItemOut(Model):
    item_id: str
    source: Source
    indexed: bool = Field(description="recommendable by the serving model right now")
    modalities: list[str]
    text: str | None = None
    tags: list[str] = []
    created_at: float | None = None
    updated_at: float | None = None
    model_version: str
    change: Change | None = None
    warnings: list[str] = []


class ItemPage(Model):
    items: list[ItemOut]
    next_cursor: str | None = None


class BatchItemResult(Model):
    item_id: str | None = Field(None, description="None when the item had no valid item_id")
    status: Literal["created", "updated", "unchanged", "failed"]
    error: ErrorBody | None = None


class BatchResult(Model):
    created: int
    updated: int
    unchanged: int
    failed: int
    results: list[BatchItemResult]


class UserOut(Model):
    user_id: str
    history: list[str] = Field(description="item ids, oldest first")
    disliked: list[str] = []
    pending_events: int = Field(0, description="accepted, not trained on yet")
    pending_events_exact: bool = Field(True, description="false: pending_events is a lower bound")


class UserErased(Model):
    user_id: str
    erased: dict[str, int] = Field(description="what was removed, by kind")
    retained: str = Field(description="what cannot be removed (e.g. trained weights)")


class ModelVersion(Model):
    version: str
    parent: str | None = None
    created_at: float | None = None
    serving: bool = False
    gate: dict[str, Any] = {}
    metrics: dict[str, Any] = {}


class ModelList(Model):
    serving: str | None = None
    versions: list[ModelVersion] = Field(description="newest first")


class ModelInfo(Model):
    """The serving snapshot (GET /v1/model)."""

    version: str
    parent: str | None = None
    created_at: float | None = None
    experts: dict[str, list[int]] = {}
    frozen: dict[str, list[int]] = {}
    utilization: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    gate: dict[str, Any] = {}
    online: dict[str, dict[str, float]] = {}
    items_indexed: int
    items_added_since: int = 0
    index: dict[str, Any] = {}
    loaded_at: float | None = None
    swaps: int = 0
    refused: dict[str, str] = {}


class RollbackDone(Model):
    version: str
    previous: str | None = None


class Health(Model):
    status: str


class Readiness(Model):
    """GET /readyz: `ready` once a snapshot is loaded; Redis is reported beside it."""

    status: str
    version: str | None = None
    detail: str | None = None
    redis: str | None = None

    @property
    def ready(self) -> bool:
        return self.status == "ready"
