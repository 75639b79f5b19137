"""Writing items: create (POST), idempotent upsert (PUT) and batches of either.

What an id can become, decided per item:

- unknown: created from its content (text and/or image), embedded and indexed at once;
- the same content again (a retried PUT or batch): unchanged, nothing re-encoded;
- only its tags differ (or only tags are sent): updated, tags replaced;
- other content under an existing id: 409. An item's features are trained into every
  later snapshot (the worker's feature store is append-only), so silently replacing
  them would be undone by the next snapshot; a new id is the way to new content;
- a snapshot item (from the dataset, e.g. MovieLens): its content is fixed by the
  snapshot, so PUT may change its tags only (text omitted or equal to its own text);
- a deleted id: 409, ids are never reused (a recommendation list, a client's cache or
  the worker's logs may still name it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from PIL import Image

from xsmoe.common.items import ItemMeta
from xsmoe.model.image_prep import ImageTooLarge, load_image
from xsmoe.service.deps import Runtime
from xsmoe.service.errors import Conflict, InvalidInput, PayloadTooLarge, ServiceError
from xsmoe.service.item_schemas import Change, ItemOut
from xsmoe.service.item_view import Known, item_out, known_items
from xsmoe.service.state import ServingState

# What a client may send; Pillow's other formats (ICO, TIFF, PSD, EPS, ...) are more
# decoder surface than a product photo needs.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
# Decoded images wait in memory for one batched encode. Each is scaled down to this
# shorter side (twice the image encoders' 224-256 px input, which resize anyway), and a
# request's kept images may hold this many pixels in all (about 200 MB as RGB): a batch
# of small files that decode to huge images is refused past it, not held.
KEEP_SHORT_SIDE = 512
REQUEST_PIXELS = 64_000_000


@dataclass(frozen=True)
class ItemInput:
    item_id: str
    text: str | None
    image: bytes | None
    tags: tuple[str, ...] | None  # None: not given (kept as they are)
    image_field: str = "image_base64"

    @functools.cached_property
    def image_sha256(self) -> str | None:
        return hashlib.sha256(self.image).hexdigest() if self.image is not None else None

    @property
    def has_content(self) -> bool:
        return bool(self.text and self.text.strip()) or bool(self.image)


def decode_base64(value: str | None, field: str = "image_base64") -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{field}: not valid base64 ({exc})", field=field) from exc


def tag_tuple(tags: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if tags is None else tuple(dict.fromkeys(t for t in tags if t))


async def _decode(image_bytes: bytes, field: str, max_pixels: int) -> Image.Image:
    try:
        image = await asyncio.to_thread(
            load_image,
            image_bytes,
            max_pixels=max_pixels,
            formats=IMAGE_FORMATS,
            shrink_to=KEEP_SHORT_SIDE,
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


def _existing(given: ItemInput, known: Known, create_only: bool) -> tuple[Change, ItemMeta] | None:
    """What writing `given` over a known id does: (change, the meta to keep); None when
    the id is free. Raises Conflict when it may not be written."""
    item_id = given.item_id
    if known.deleted:
        raise Conflict(f"item_id: {item_id!r} was deleted; ids are never reused")
    if not known.exists:
        return None
    if create_only:
        raise Conflict(
            f"item_id: {item_id!r} exists; ids are never reused "
            "(PUT /v1/items/{item_id} is the idempotent way to write an item)"
        )
    meta = known.meta or ItemMeta(known.text, known.tags, None, None, None)
    if given.has_content:
        same = (known.text or None) == (given.text or None) and (
            meta.image_sha256 == given.image_sha256
        )
        if not same:
            if known.source == "snapshot" and known.meta is None:
                raise Conflict(
                    f"item {item_id!r} comes from the snapshot: its content is fixed by the "
                    "trained model; PUT may change its tags only (omit text and image_base64)"
                )
            raise Conflict(
                f"item {item_id!r} exists with other content; an item's content cannot be "
                "replaced (its features are trained into the snapshots); add the new content "
                "under a new item_id, and DELETE this one if it should go"
            )
    if given.tags is None or set(given.tags) == set(known.tags):
        return "unchanged", meta
    return "updated", replace(meta, tags=given.tags, updated_at=time.time())


async def write_items(
    runtime: Runtime,
    state: ServingState,
    inputs: Sequence[ItemInput],
    *,
    create_only: bool,
    retried: bool = False,
) -> list[ItemOut | ServiceError]:
    """Each input written (or refused) on its own; the results in the inputs' order.
    `retried`: a second look after losing a race to create; the id is taken then."""
    results: list[ItemOut | ServiceError | None] = [None] * len(inputs)
    known = await known_items(runtime, state, [i.item_id for i in inputs])
    limit = runtime.settings.api.max_image_bytes
    fresh: list[int] = []
    tagged: dict[str, ItemMeta] = {}
    for n, given in enumerate(inputs):
        try:
            if given.image is not None and len(given.image) > limit:
                raise PayloadTooLarge(
                    f"{given.image_field}: {len(given.image)} bytes; the limit is {limit}",
                    field=given.image_field,
                )
            decided = _existing(given, known[given.item_id], create_only)
        except ServiceError as exc:
            results[n] = exc
            continue
        if decided is None and retried:  # taken, though nothing readable says by what
            results[n] = Conflict(f"item_id: {given.item_id!r} is taken; use another id")
            continue
        if decided is None:
            fresh.append(n)
            continue
        change, meta = decided
        if change == "updated":
            tagged[given.item_id] = meta
        updated = replace(known[given.item_id], meta=meta)
        results[n] = item_out(state, updated, runtime.serving.catalog).model_copy(
            update={"change": change}
        )
    if tagged:  # one round trip for every tag change
        await runtime.store.set_item_meta(tagged)
        runtime.metrics.items.labels("update").inc(len(tagged))
    if fresh:
        created = await _create(runtime, state, [inputs[n] for n in fresh], create_only=create_only)
        for n, out in zip(fresh, created, strict=True):
            results[n] = out
    return [r if r is not None else ServiceError("not written") for r in results]


async def _create(
    runtime: Runtime, state: ServingState, inputs: Sequence[ItemInput], *, create_only: bool
) -> list[ItemOut | ServiceError]:
    model = state.retriever.model
    if model.content is None:
        refusal = Conflict(f"model {state.version} scores item ids only: it cannot add new items")
        return [refusal for _ in inputs]
    modalities = set(model.config.shapes)
    results: list[ItemOut | ServiceError | None] = [None] * len(inputs)
    ready: list[tuple[int, Image.Image | None, list[str]]] = []
    pixels = 0
    for n, given in enumerate(inputs):
        try:
            image, warnings = await _checked(runtime, state, given, modalities)
            size = image.width * image.height if image is not None else 0
            if pixels + size > REQUEST_PIXELS:
                raise PayloadTooLarge(
                    f"{given.image_field}: the images of this request decode to over "
                    f"{REQUEST_PIXELS:,} pixels; send fewer images per call",
                    field=given.image_field,
                )
            pixels += size
            ready.append((n, image, warnings))
        except ServiceError as exc:
            results[n] = exc
    encoded = await asyncio.to_thread(
        runtime.encoder.encode_many,
        [(inputs[n].item_id, inputs[n].text, image) for n, image, _ in ready],
        modalities,
    )
    now = time.time()
    metas = [
        ItemMeta(
            text=inputs[n].text or None,
            tags=inputs[n].tags or (),
            created_at=now,
            updated_at=None,
            image_sha256=inputs[n].image_sha256,
        )
        for n, _, _ in ready
    ]
    added = await runtime.store.add_items(list(zip(encoded, metas, strict=True)))
    mirror = runtime.serving.catalog
    created: dict[int, list[str]] = {}
    lost: list[int] = []
    for (n, _, warnings), item, ok in zip(ready, encoded, added, strict=True):
        if ok:
            mirror.add(item)
            runtime.metrics.items.labels("add").inc()
            created[n] = warnings
        else:  # written meanwhile by another request: decided against that one
            lost.append(n)
    if created:
        await runtime.serving.catalog_changed()
    current = runtime.serving.current or state
    views = await known_items(runtime, current, [inputs[n].item_id for n in created])
    for n, warnings in created.items():
        view = item_out(current, views[inputs[n].item_id], mirror)
        results[n] = view.model_copy(update={"change": "created", "warnings": warnings})
    for n in lost:
        again = await write_items(
            runtime, current, [inputs[n]], create_only=create_only, retried=True
        )
        results[n] = again[0]
    return [r if r is not None else ServiceError("not written") for r in results]


async def _checked(
    runtime: Runtime, state: ServingState, given: ItemInput, modalities: set[str]
) -> tuple[Image.Image | None, list[str]]:
    """The decoded image (if the model reads images) and warnings; refuses an item the
    model could not score."""
    if not given.has_content:
        raise InvalidInput(
            f"text, image_base64: {given.item_id!r} is a new item: give text or an image"
        )
    warnings = []
    image = None
    if given.image and "image" in modalities:
        image = await _decode(given.image, given.image_field, runtime.settings.api.max_image_pixels)
    elif given.image:  # never decoded: no memory spent on pixels nothing reads
        warnings.append(
            f"image ignored (not decoded): model {state.version} reads {sorted(modalities)}"
        )
    has_text = bool(given.text and given.text.strip())
    if has_text and "text" not in modalities:
        warnings.append(f"text ignored: model {state.version} reads {sorted(modalities)}")
    if not ((has_text and "text" in modalities) or image is not None):
        raise InvalidInput(
            f"text, image: model {state.version} reads {sorted(modalities)}; "
            "give content in one of those"
        )
    return image, warnings
