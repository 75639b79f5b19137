"""The run-time catalog: add items (recommendable at once), look them up, delete them."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, UploadFile
from PIL import Image

from xsmoe.common.events import Identifier
from xsmoe.common.items import StoredItem
from xsmoe.model.image_prep import ImageTooLarge, load_image
from xsmoe.service.auth import require_read, require_write
from xsmoe.service.deps import Runtime, RuntimeDep, StateDep
from xsmoe.service.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from xsmoe.service.schemas import ItemCreate, ItemOut
from xsmoe.service.state import ServingState

router = APIRouter(prefix="/v1/items", tags=["items"])
# `:path`: an id with a `/` (sent as %2F) reaches validation and gets a 422 that says
# what ids may hold, not a bare 404 from the router.
ItemIdPath = Annotated[Identifier, Path(examples=["new-42"])]
# What a client may send; Pillow's other formats (ICO, TIFF, PSD, EPS, ...) are more
# decoder surface than a product photo needs.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")


def _item_out(state: ServingState, item: StoredItem | None, item_id: str) -> ItemOut:
    catalog = state.retriever.catalog
    in_snapshot = catalog.main_rows.get(item_id) is not None
    return ItemOut(
        item_id=item_id,
        source="snapshot" if in_snapshot else "runtime",
        indexed=item_id in catalog and not catalog.is_deleted(item_id),
        modalities=sorted(item.features) if item else sorted(state.retriever.model.config.shapes),
        text=item.meta.get("text") if item else None,
        created_at=item.meta.get("created_at") if item else None,
        model_version=state.version,
    )


async def _exists(runtime: Runtime, state: ServingState, item_id: str) -> bool:
    mirror = runtime.serving.catalog
    if item_id in state.retriever.catalog or item_id in mirror.items or item_id in mirror.deleted:
        return True
    return await runtime.store.is_runtime_item(item_id) or await runtime.store.is_deleted(item_id)


async def _decode(image_bytes: bytes, field: str, max_pixels: int) -> Image.Image:
    try:
        image = await asyncio.to_thread(
            load_image, image_bytes, max_pixels=max_pixels, formats=IMAGE_FORMATS
        )
    except ImageTooLarge as exc:
        raise PayloadTooLarge(
            f"{field}: {exc} (XSMOE_API__MAX_IMAGE_PIXELS); send a smaller image", field=field
        ) from exc
    if image is None:
        raise InvalidInput(
            f"{field}: not a decodable image ({', '.join(IMAGE_FORMATS)} expected)", field=field
        )
    return image


async def add_item(
    runtime: Runtime,
    state: ServingState,
    item_id: str,
    text: str | None,
    image_bytes: bytes | None,
    image_field: str = "image",
) -> ItemOut:
    limit = runtime.settings.api.max_image_bytes
    if image_bytes is not None and len(image_bytes) > limit:
        raise PayloadTooLarge(
            f"{image_field}: {len(image_bytes)} bytes; the limit is {limit}", field=image_field
        )
    model = state.retriever.model
    if model.content is None:
        raise Conflict(f"model {state.version} scores item ids only: it cannot add new items")
    modalities = set(model.config.shapes)
    warnings = []
    image = None
    if image_bytes and "image" in modalities:
        image = await _decode(image_bytes, image_field, runtime.settings.api.max_image_pixels)
    elif image_bytes:  # never decoded: no memory spent on pixels nothing reads
        warnings.append(
            f"image ignored (not decoded): model {state.version} reads {sorted(modalities)}"
        )
    has_text = bool(text and text.strip())
    if has_text and "text" not in modalities:
        warnings.append(f"text ignored: model {state.version} reads {sorted(modalities)}")
    if not ((has_text and "text" in modalities) or (image is not None and "image" in modalities)):
        raise InvalidInput(
            f"text, image: model {state.version} reads {sorted(modalities)}; "
            "give content in one of those"
        )
    reused = f"item_id: {item_id!r} exists or was deleted; ids are never reused"
    if await _exists(runtime, state, item_id):
        raise Conflict(reused)
    item = await asyncio.to_thread(runtime.encoder.encode, item_id, text, image, modalities)
    if not await runtime.store.add_item(item):
        raise Conflict(reused)
    runtime.serving.catalog.add(item)
    runtime.serving.catalog_changed()
    runtime.metrics.items.labels("add").inc()
    state = runtime.serving.current or state
    return _item_out(state, item, item_id).model_copy(update={"warnings": warnings})


@router.post(
    "", status_code=201, dependencies=[Depends(require_write)], summary="Add an item (JSON)"
)
async def post_item(body: ItemCreate, runtime: RuntimeDep, state: StateDep) -> ItemOut:
    """Encodes the content with the frozen encoders, embeds it with the serving model
    and indexes it before replying: it is recommendable at once, on every replica
    within a second, and kept for every later snapshot."""
    image = None
    if body.image_base64:
        try:
            image = base64.b64decode(body.image_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(
                f"image_base64: not valid base64 ({exc})", field="image_base64"
            ) from exc
    return await add_item(runtime, state, body.item_id, body.text, image, "image_base64")


@router.post(
    "/upload",
    status_code=201,
    dependencies=[Depends(require_write)],
    summary="Add an item (multipart upload)",
)
async def upload_item(
    runtime: RuntimeDep,
    state: StateDep,
    item_id: Annotated[Identifier, Form()],
    text: Annotated[str | None, Form(max_length=20_000)] = None,
    image: Annotated[UploadFile | None, File(description="JPEG/PNG/WebP")] = None,
) -> ItemOut:
    """The same as POST /v1/items, with the image as a file part."""
    data = await image.read() if image is not None else None
    if not (text and text.strip()) and not data:
        raise InvalidInput("text, image: give text or an image file")
    return await add_item(runtime, state, item_id, text, data or None)


@router.get("/{item_id:path}", dependencies=[Depends(require_read)], summary="Look up an item")
async def get_item(item_id: ItemIdPath, runtime: RuntimeDep, state: StateDep) -> ItemOut:
    catalog = state.retriever.catalog
    item = runtime.serving.catalog.items.get(item_id)
    if item_id in runtime.serving.catalog.deleted or catalog.is_deleted(item_id):
        raise NotFound(f"item {item_id!r} was deleted")
    if item is None and item_id not in catalog:
        item = await runtime.store.get_item(item_id)
        if item is None:
            raise NotFound(f"no item {item_id!r}")
    return _item_out(state, item, item_id)


@router.delete("/{item_id:path}", dependencies=[Depends(require_write)], summary="Delete an item")
async def delete_item(item_id: ItemIdPath, runtime: RuntimeDep, state: StateDep) -> ItemOut:
    """Never recommended again from this moment (every replica within a second)."""
    mirror = runtime.serving.catalog
    known = item_id in state.retriever.catalog or item_id in mirror.items
    if not (known or await runtime.store.is_runtime_item(item_id)):
        raise NotFound(f"no item {item_id!r}")
    if not await runtime.store.delete_item(item_id):
        raise NotFound(f"item {item_id!r} was already deleted")
    mirror.delete(item_id)
    runtime.serving.catalog_changed()
    runtime.metrics.items.labels("delete").inc()
    out = _item_out(runtime.serving.current or state, mirror.items.get(item_id), item_id)
    return out
