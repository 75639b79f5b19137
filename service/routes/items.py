"""The catalog: add or upsert items (recommendable at once), list, look up, delete."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, Response, UploadFile
from pydantic import ValidationError

from xsmoe.common.events import Identifier
from xsmoe.service.auth import require_read, require_write
from xsmoe.service.deps import RuntimeDep, StateDep
from xsmoe.service.errors import InvalidInput, NotFound, ServiceError, describe_validation
from xsmoe.service.item_list import MAX_PAGE, page_of
from xsmoe.service.item_schemas import (
    BatchItem,
    BatchItemResult,
    BatchResult,
    ItemBatch,
    ItemCreate,
    ItemError,
    ItemOut,
    ItemPage,
    ItemPut,
    Source,
)
from xsmoe.service.item_view import item_out, known_for_read
from xsmoe.service.item_writes import ItemInput, decode_base64, tag_tuple, write_items
from xsmoe.service.openapi import errors
from xsmoe.service.query import forbid_unknown_query

router = APIRouter(prefix="/v1/items", tags=["items"], dependencies=[Depends(forbid_unknown_query)])
# `:path`: an id with a `/` (sent as %2F) reaches validation and gets a 422 that says
# what ids may hold, not a bare 404 from the router.
ItemIdPath = Annotated[Identifier, Path(examples=["new-42"])]
WRITE_ERRORS = errors(401, 403, 409, 413, 422, 503)


def _one(result: ItemOut | ServiceError) -> ItemOut:
    if isinstance(result, ServiceError):
        raise result
    return result


@router.post(
    "",
    status_code=201,
    dependencies=[Depends(require_write)],
    summary="Add an item (JSON)",
    operation_id="post_item",
    responses=WRITE_ERRORS,
)
async def post_item(body: ItemCreate, runtime: RuntimeDep, state: StateDep) -> ItemOut:
    """Encodes the content with the frozen encoders, embeds it with the serving model
    and indexes it before replying: it is recommendable at once, on every replica
    within a second, and kept for every later snapshot. An existing id is a 409 (PUT
    is the idempotent way)."""
    given = ItemInput(
        body.item_id, body.text, decode_base64(body.image_base64), tag_tuple(body.tags)
    )
    return _one((await write_items(runtime, state, [given], create_only=True))[0])


@router.post(
    "/upload",
    status_code=201,
    dependencies=[Depends(require_write)],
    summary="Add an item (multipart upload)",
    operation_id="upload_item",
    responses=WRITE_ERRORS,
)
async def upload_item(
    runtime: RuntimeDep,
    state: StateDep,
    item_id: Annotated[Identifier, Form()],
    text: Annotated[str | None, Form(max_length=20_000)] = None,
    image: Annotated[UploadFile | None, File(description="JPEG/PNG/WebP")] = None,
    tags: Annotated[
        list[str] | None, Form(description="repeat the field, or one comma-separated list")
    ] = None,
) -> ItemOut:
    """The same as POST /v1/items, with the image as a file part."""
    data = await image.read() if image is not None else None
    if not (text and text.strip()) and not data:
        raise InvalidInput("text, image: give text or an image file")
    try:
        checked = ItemPut(tags=[t for value in tags or [] for t in value.split(",") if t.strip()])
    except ValidationError as exc:
        detail, _ = describe_validation(exc.errors())
        raise InvalidInput(detail, field="tags") from exc
    given = ItemInput(
        item_id, text, data or None, tag_tuple(checked.tags) if tags else None, "image"
    )
    return _one((await write_items(runtime, state, [given], create_only=True))[0])


@router.put(
    "/{item_id:path}",
    dependencies=[Depends(require_write)],
    summary="Create or update an item (idempotent)",
    operation_id="put_item",
    status_code=200,
    responses={
        201: {"model": ItemOut, "description": "Created"},
        **WRITE_ERRORS,
    },
)
async def put_item(
    item_id: ItemIdPath, body: ItemPut, response: Response, runtime: RuntimeDep, state: StateDep
) -> ItemOut:
    """201 and `change: "created"` for a new id; 200 and `"unchanged"` for the same
    content again (a retry is safe); 200 and `"updated"` when only the tags differ.
    Other content under an existing id, or any write to a deleted id, is a 409: ids are
    never reused and trained content is never replaced. A snapshot item's tags may be
    set; its content is fixed by the snapshot."""
    given = ItemInput(item_id, body.text, decode_base64(body.image_base64), tag_tuple(body.tags))
    out = _one((await write_items(runtime, state, [given], create_only=False))[0])
    response.status_code = 201 if out.change == "created" else 200
    return out


@router.post(
    ":batch",
    dependencies=[Depends(require_write)],
    summary="Create or update up to 1000 items",
    operation_id="batch_items",
    responses=errors(401, 403, 413, 422, 503),
)
async def batch_items(body: ItemBatch, runtime: RuntimeDep, state: StateDep) -> BatchResult:
    """PUT semantics for each item, encoded in batches; one item's failure is reported in
    its result and fails nothing else. Retrying the whole batch is safe."""
    results: list[BatchItemResult | None] = [None] * len(body.items)
    inputs: list[tuple[int, ItemInput]] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(body.items):
        try:
            item = BatchItem.model_validate(raw)  # raw: see ItemBatch
            image = decode_base64(item.image_base64, f"items[{n}].image_base64")
        except ValidationError as exc:
            detail, fields = describe_validation(exc.errors())
            fields = [{**f, "field": f"items[{n}].{f['field']}"} for f in fields]
            failed = ItemError(error="invalid_input", detail=detail, fields=fields)
            results[n] = BatchItemResult(item_id=_id_of(raw), status="failed", error=failed)
            continue
        except ServiceError as exc:
            results[n] = _failed(_id_of(raw), exc)
            continue
        if item.item_id in seen:
            results[n] = _failed(
                item.item_id,
                InvalidInput(f"items[{n}].item_id: the same id as items[{seen[item.item_id]}]"),
            )
            continue
        seen[item.item_id] = n
        given = ItemInput(
            item.item_id, item.text, image, tag_tuple(item.tags), f"items[{n}].image_base64"
        )
        inputs.append((n, given))
    written = await write_items(runtime, state, [g for _, g in inputs], create_only=False)
    for (n, given), out in zip(inputs, written, strict=True):
        if isinstance(out, ServiceError):
            results[n] = _failed(given.item_id, out)
        else:
            results[n] = BatchItemResult(item_id=given.item_id, status=out.change or "unchanged")
    final = [r for r in results if r is not None]
    counts = {s: sum(r.status == s for r in final) for s in ("created", "updated", "unchanged")}
    return BatchResult(**counts, failed=sum(r.status == "failed" for r in final), results=final)


def _id_of(raw: Any) -> str | None:
    value = raw.get("item_id") if isinstance(raw, dict) else None
    return (
        str(value)[:128] if isinstance(value, str | int) and not isinstance(value, bool) else None
    )


def _failed(item_id: str | None, exc: ServiceError) -> BatchItemResult:
    fields = [{"field": exc.field, "message": exc.detail}] if exc.field else None
    error = ItemError(error=exc.code, detail=exc.detail, fields=fields)
    return BatchItemResult(item_id=item_id, status="failed", error=error)


@router.get(
    "",
    dependencies=[Depends(require_read)],
    summary="List items, page by page",
    operation_id="list_items",
    responses=errors(401, 403, 422, 503),
)
async def list_items(
    runtime: RuntimeDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"1..{MAX_PAGE}")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=400, description="next_cursor of the previous page")
    ] = None,
    source: Annotated[Source | None, Query(description="snapshot or runtime items only")] = None,
) -> ItemPage:
    """Every recommendable or stored item not deleted, ordered by item_id. Pages never
    repeat or skip an item that exists throughout; an item added meanwhile shows up
    if its id sorts after the page the client is on."""
    ids, next_cursor = await page_of(runtime, state, limit, cursor, source)
    known, warnings = await known_for_read(runtime, state, ids)
    mirror = runtime.serving.catalog
    items = [
        item_out(state, known[i], mirror).model_copy(update={"warnings": warnings}) for i in ids
    ]
    return ItemPage(items=items, next_cursor=next_cursor)


@router.get(
    "/{item_id:path}",
    dependencies=[Depends(require_read)],
    summary="Look up an item",
    operation_id="get_item",
    responses=errors(401, 403, 404, 422, 503),
)
async def get_item(item_id: ItemIdPath, runtime: RuntimeDep, state: StateDep) -> ItemOut:
    known, warnings = await known_for_read(runtime, state, [item_id])
    found = known[item_id]
    if found.deleted:
        raise NotFound(f"item {item_id!r} was deleted")
    if not found.exists:
        raise NotFound(f"no item {item_id!r}")
    out = item_out(state, found, runtime.serving.catalog)
    return out.model_copy(update={"warnings": warnings})


@router.delete(
    "/{item_id:path}",
    dependencies=[Depends(require_write)],
    summary="Delete an item",
    operation_id="delete_item",
    responses=errors(401, 403, 404, 422, 503),
)
async def delete_item(item_id: ItemIdPath, runtime: RuntimeDep, state: StateDep) -> ItemOut:
    """Never recommended again from this moment (every replica within a second)."""
    mirror = runtime.serving.catalog
    known = item_id in state.retriever.catalog or item_id in mirror.items
    if not (known or await runtime.store.is_runtime_item(item_id)):
        raise NotFound(f"no item {item_id!r}")
    before = (await known_for_read(runtime, state, [item_id]))[0][item_id]
    if not await runtime.store.delete_item(item_id):
        raise NotFound(f"item {item_id!r} was already deleted")
    mirror.delete(item_id)
    await runtime.serving.catalog_changed()
    runtime.metrics.items.labels("delete").inc()
    current = runtime.serving.current or state
    return item_out(current, replace(before, deleted=True), mirror)
