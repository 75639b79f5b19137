"""Request and response bodies of the catalog routes (/v1/items), with examples."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SkipValidation,
    StringConstraints,
    model_validator,
)

from xsmoe.common.events import Identifier

MAX_TAGS = 32
MAX_BATCH_ITEMS = 1000

ItemTag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Source = Literal["snapshot", "runtime"]
Change = Literal["created", "updated", "unchanged"]


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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "item_id": "1",
                            "source": "snapshot",
                            "indexed": True,
                            "modalities": ["text"],
                            "text": "Toy Story (1995). Genres: Animation, Children's, Comedy",
                            "tags": ["Animation", "Children's", "Comedy"],
                            "created_at": None,
                            "updated_at": None,
                            "model_version": "v000001",
                            "change": None,
                            "warnings": [],
                        }
                    ],
                    "next_cursor": "eyJhZnRlciI6ICIxIn0",
                }
            ]
        }
    )

    items: list[ItemOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: done")
