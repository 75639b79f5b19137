"""What a caller hands in: feedback events, items for a batch, a recommendation
filter, images (bytes or a file path). Each knows its JSON form; the server
validates the values and answers a 422 naming the field."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

EventType = Literal["click", "view", "purchase", "like", "dislike"]
ImageInput = bytes | str | os.PathLike[str]  # the image's bytes, or the path of a file

# What the server decodes (JPEG, PNG, WebP, GIF, BMP), told by the first bytes.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
)


def new_event_id() -> str:
    """A client-made event id: a retried send is then counted once by the server."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class FeedbackEvent:
    user_id: str
    item_id: str
    type: EventType = "click"
    event_id: str | None = None
    ts: float | datetime | None = None  # when it happened; the server's clock if None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": self.user_id, "item_id": self.item_id}
        body["type"] = self.type
        body["event_id"] = self.event_id or new_event_id()
        if self.ts is not None:
            body["ts"] = self.ts.timestamp() if isinstance(self.ts, datetime) else self.ts
        return body


def event_json(event: FeedbackEvent | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(event, FeedbackEvent):
        return event.to_json()
    body = dict(event)
    if body.get("event_id") is None:
        body["event_id"] = new_event_id()
    return body


@dataclass(frozen=True)
class ItemInput:
    """One item of a batch upsert (PUT semantics: created, updated or unchanged)."""

    item_id: str
    text: str | None = None
    image: ImageInput | None = None
    tags: Sequence[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"item_id": self.item_id, **item_content(self.text, self.image, self.tags)}


def item_json(item: ItemInput | Mapping[str, Any]) -> dict[str, Any]:
    return item.to_json() if isinstance(item, ItemInput) else dict(item)


def item_content(
    text: str | None, image: ImageInput | None, tags: Sequence[str] | None
) -> dict[str, Any]:
    """The JSON content of an item; what is None is left out (the server's default)."""
    body: dict[str, Any] = {}
    if text is not None:
        body["text"] = text
    if image is not None:
        body["image_base64"] = base64.b64encode(read_image(image)).decode("ascii")
    if tags is not None:
        body["tags"] = list(tags)
    return body


@dataclass(frozen=True)
class RecommendFilter:
    tags_any: Sequence[str] | None = None
    tags_none: Sequence[str] | None = None
    source: Literal["snapshot", "runtime"] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name in ("tags_any", "tags_none"):
            value = getattr(self, name)
            if value is not None:
                body[name] = list(value)
        if self.source is not None:
            body["source"] = self.source
        return body


def read_image(image: ImageInput) -> bytes:
    if isinstance(image, bytes):
        return image
    return Path(image).read_bytes()


def content_type(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return "application/octet-stream"


def image_file(image: ImageInput, filename: str | None) -> tuple[str, bytes, str]:
    """The multipart file part of an image: name, bytes, content type."""
    data = read_image(image)
    if filename is None:
        filename = "image" if isinstance(image, bytes) else Path(image).name
    return filename, data, content_type(data)
