"""What the items of a snapshot are: text and tags, for lookups and tag filters.

A snapshot carries ids and vectors, not texts. Its manifest names the dataset it
was trained from; for the built-in MovieLens-100k the texts (title, year, genres)
and tags (the genres) are read from the dataset itself, once per process. Items of
an own catalog show the text kept in Redis if they were added at run time, and no
text otherwise (the API never sees the catalog file).
"""

from __future__ import annotations

import csv
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xsmoe.model.data import ML100K, movie_text, movielens_dir
from xsmoe.model.errors import DatasetError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotItem:
    text: str | None
    tags: tuple[str, ...]


NOTHING: Mapping[str, SnapshotItem] = {}


def dataset_of(manifest: Mapping[str, Any]) -> str | None:
    source = manifest.get("source")
    return str(source.get("dataset")) if isinstance(source, dict) else None


def items_of(manifest: Mapping[str, Any]) -> Mapping[str, SnapshotItem]:
    """Text and tags per item id of the snapshot's dataset ({} where unknown).
    Blocking the first time (a file read): call it off the event loop."""
    return movielens_items() if dataset_of(manifest) == ML100K else NOTHING


@functools.cache
def movielens_items() -> Mapping[str, SnapshotItem]:
    """MovieLens-100k's 1682 movies: 'Toy Story (1995). Genres: ...', the genres as tags.
    The dataset is a fixed file of an installed wheel, so it is read once."""
    try:
        path = movielens_dir() / f"{ML100K}.item"
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = [col.split(":", 1)[0] for col in next(reader)]
            rows = [dict(zip(header, row, strict=False)) for row in reader]
    except (DatasetError, OSError, StopIteration) as exc:
        log.warning("MovieLens-100k texts unavailable (%s): snapshot items show no text", exc)
        return NOTHING
    out = {}
    for row in rows:
        genres = row.get("class", "")
        text = movie_text(row.get("movie_title", ""), row.get("release_year", ""), genres)
        out[row["item_id"]] = SnapshotItem(text, tuple(genres.split()))
    return out
