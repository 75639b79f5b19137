"""Datasets: catalogs (items with text / image) and time-ordered interactions.

MovieLens-100k is read in place from the `recbole` wheel (its terms forbid
redistribution; recbole itself is never imported). A user's own catalog is a
JSONL file, their interactions a CSV or JSONL file.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from xsmoe.model.errors import DatasetError
from xsmoe.model.ids import id_problem

ML100K = "ml-100k"


@dataclass(frozen=True)
class CatalogItem:
    """One catalog entry; text or image may be absent (a missing modality)."""

    item_id: str
    text: str | None = None
    image: Path | None = None


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays sorted by time; ties keep input order (stable sort)."""

    user_ids: np.ndarray  # (N,) object (str)
    item_ids: np.ndarray  # (N,) object (str)
    timestamps: np.ndarray  # (N,) float64 seconds since the epoch

    def __len__(self) -> int:
        return len(self.timestamps)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, float]]) -> Interactions:
        users, items, stamps = [], [], []
        for user, item, ts in rows:
            users.append(user)
            items.append(item)
            stamps.append(ts)
        ts_arr = np.asarray(stamps, dtype=np.float64)
        order = np.argsort(ts_arr, kind="stable")
        return cls(
            np.asarray(users, dtype=object)[order],
            np.asarray(items, dtype=object)[order],
            ts_arr[order],
        )


@dataclass(frozen=True)
class Dataset:
    name: str
    items: list[CatalogItem]
    interactions: Interactions


# -- MovieLens-100k --------------------------------------------------------------
def movielens_dir() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None or spec.origin is None:
        raise DatasetError(
            "MovieLens-100k is read from the recbole wheel: pip install --no-deps recbole==1.2.1"
        )
    path = Path(spec.origin).parent / "dataset_example" / ML100K
    if not (path / f"{ML100K}.inter").is_file():
        raise DatasetError(f"{path} has no {ML100K}.inter; reinstall recbole==1.2.1")
    return path


def _atomic_tsv(path: Path) -> Iterator[dict[str, str]]:
    """RecBole's atomic files: TSV whose header names columns as `name:type`."""
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [col.split(":", 1)[0] for col in next(reader)]
        for row in reader:
            yield dict(zip(header, row, strict=False))


def movie_text(title: str, year: str, genres: str) -> str:
    """Item text = title + year + genres, e.g. 'Toy Story (1995). Genres: Animation, Comedy'."""
    head = f"{title.strip()} ({year.strip()})" if year.strip() else title.strip()
    genre_list = genres.split()
    return f"{head}. Genres: {', '.join(genre_list)}" if genre_list else head


def load_movielens_100k() -> Dataset:
    folder = movielens_dir()
    items = [
        CatalogItem(
            item_id=row["item_id"],
            text=movie_text(
                row.get("movie_title", ""), row.get("release_year", ""), row.get("class", "")
            ),
        )
        for row in _atomic_tsv(folder / f"{ML100K}.item")
    ]
    interactions = Interactions.from_rows(
        (row["user_id"], row["item_id"], float(row["timestamp"]))
        for row in _atomic_tsv(folder / f"{ML100K}.inter")
    )
    return Dataset(ML100K, items, interactions)


# -- a user's own files ------------------------------------------------------------
def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{lineno}: expected a JSON object")
            yield lineno, record


def _id_field(record: dict[str, object], key: str, where: str) -> str:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise DatasetError(f"{where}: '{key}' is required (a non-empty string or integer)")
    problem = id_problem(str(value))  # the API's rule: every id here can be served there
    if problem is not None:
        raise DatasetError(f"{where}: {key} {str(value)!r}: {problem}")
    return str(value)


def load_catalog(path: Path) -> list[CatalogItem]:
    """JSONL rows `{"item_id", "text"?, "image"?}`; image paths relative to the file."""
    items, seen = [], set()
    for lineno, record in _jsonl(path):
        where = f"{path}:{lineno}"
        item_id = _id_field(record, "item_id", where)
        if item_id in seen:
            raise DatasetError(f"{where}: item_id {item_id!r} appears twice")
        seen.add(item_id)
        text, image = record.get("text"), record.get("image")
        if text is not None and not isinstance(text, str):
            raise DatasetError(f"{where}: 'text' must be a string or null")
        if image is not None and not isinstance(image, str):
            raise DatasetError(f"{where}: 'image' must be a file path or null")
        image_path = (path.parent / image) if image else None
        items.append(CatalogItem(item_id, text or None, image_path))
    return items


def parse_timestamp(value: object, where: str) -> float:
    """Epoch seconds (int/float or numeric string) or an ISO 8601 string."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(value.strip()).timestamp()
        except ValueError:
            pass
    raise DatasetError(f"{where}: 'timestamp' must be epoch seconds or ISO 8601, got {value!r}")


def load_interactions(path: Path) -> Interactions:
    """CSV (header user_id,item_id,timestamp) or JSONL with the same keys."""
    rows: list[tuple[str, str, float]] = []
    if path.suffix.lower() in {".jsonl", ".json", ".ndjson"}:
        records: Iterable[tuple[int, dict[str, object]]] = _jsonl(path)
    elif path.suffix.lower() in {".csv", ".tsv"}:
        records = _csv_records(path)
    else:
        raise DatasetError(f"{path}: interactions must be .csv, .tsv or .jsonl")
    for lineno, record in records:
        where = f"{path}:{lineno}"
        rows.append(
            (
                _id_field(record, "user_id", where),
                _id_field(record, "item_id", where),
                parse_timestamp(record.get("timestamp"), where),
            )
        )
    return Interactions.from_rows(rows)


def _csv_records(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        needed = {"user_id", "item_id", "timestamp"}
        if reader.fieldnames is None or not needed <= set(reader.fieldnames):
            raise DatasetError(f"{path}: header must name the columns {sorted(needed)}")
        for lineno, row in enumerate(reader, 2):
            yield lineno, dict(row)
