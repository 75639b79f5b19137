"""Paging through the catalog: every item not deleted, ordered by item_id.

The order is by id, not by position, so it holds across pages while items are added
or deleted and across snapshot swaps (a swap moves run-time items into the
snapshot's rows, never changes their ids). The cursor is the last id of a page,
wrapped so clients treat it as opaque.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import heapq
import itertools
import json
from collections.abc import Iterator, Sequence

from xsmoe.service.deps import Runtime
from xsmoe.service.errors import InvalidInput
from xsmoe.service.item_schemas import Source
from xsmoe.service.state import ServingState

MAX_PAGE = 1000


class _SortedIds:
    """The snapshot's ids in id order, sorted once per snapshot (not per request)."""

    def __init__(self) -> None:
        self._of: Sequence[str] | None = None
        self._sorted: list[str] = []

    async def of(self, ids: Sequence[str]) -> list[str]:
        if self._of is not ids:
            ordered = await asyncio.to_thread(sorted, ids)
            self._of, self._sorted = ids, ordered
        return self._sorted


_SNAPSHOT_ORDER = _SortedIds()


def encode_cursor(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
        if not isinstance(after, str):
            raise TypeError("not a string")
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidInput(
            "query.cursor: not a cursor this API gave out; pass next_cursor of the previous "
            "page as it is, or leave it out for the first page",
            field="query.cursor",
        ) from None
    return after


def _from(ordered: Sequence[str], after: str | None) -> Iterator[str]:
    start = 0 if after is None else bisect.bisect_right(ordered, after)
    return itertools.islice(ordered, start, None)


async def page_of(
    runtime: Runtime, state: ServingState, limit: int, cursor: str | None, source: Source | None
) -> tuple[list[str], str | None]:
    """The ids of one page and the cursor of the next (None: this was the last)."""
    after = decode_cursor(cursor) if cursor else None
    catalog, mirror = state.retriever.catalog, runtime.serving.catalog
    streams: list[Iterator[str]] = []
    if source in (None, "snapshot"):
        streams.append(_from(await _SNAPSHOT_ORDER.of(catalog.main_ids), after))
    if source in (None, "runtime"):
        added = {i for i in (*catalog.added_ids, *mirror.items) if i not in catalog.main_rows}
        streams.append(_from(sorted(added), after))
    page: list[str] = []
    more = False
    for item_id in heapq.merge(*streams):
        if item_id in mirror.deleted or catalog.is_deleted(item_id):
            continue
        if len(page) == limit:
            more = True
            break
        page.append(item_id)
    return page, encode_cursor(page[-1]) if more and page else None
