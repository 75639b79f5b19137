"""The windows ledger: one compact JSON line per closed window, the worker's commit point.

A window's detail (its stream ids, event ids and trained pairs) is written to
`windows/<window>.json` first; then its line (ranges, counts, a digest of the
stream ids, metrics) is appended and fsynced: that append is the commit. After
the pointer has moved and the entries are acked, `FINISHED` records the window,
so a restart finishes only a window that was not finished and never undoes an
operator's rollback. A crash at any moment neither loses an accepted event nor
trains one twice.

The file is rotated (one older file kept) so that it stays small; the dashboard
reads only its tail.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LEDGER = "windows.jsonl"
ROTATED = "windows.1.jsonl"
DETAILS = "windows"
FINISHED = "FINISHED"
_TAIL_CHUNK = 1 << 16


def digest(stream_ids: Iterable[str]) -> str:
    """A short fingerprint of a window's stream ids (order-independent)."""
    h = hashlib.sha256()
    for sid in sorted(stream_ids):
        h.update(sid.encode() + b"\n")
    return h.hexdigest()[:16]


def append(root: Path, record: dict[str, Any]) -> None:
    """Append one line, durably; a line torn by an earlier crash is cut off first
    (it was never committed), so this record cannot be glued onto it."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / LEDGER
    _repair(path)
    with path.open("ab") as fh:
        fh.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def _repair(path: Path) -> None:
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        end = fh.seek(0, os.SEEK_END)
        pos = end
        while pos > 0:  # find the last newline, reading backwards in chunks
            step = min(_TAIL_CHUNK, pos)
            fh.seek(pos - step)
            chunk = fh.read(step)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                pos = pos - step + cut + 1
                break
            pos -= step
        log.warning("ledger %s: cutting a torn last line (%d bytes)", path, end - pos)
        fh.truncate(pos)
        fh.flush()
        os.fsync(fh.fileno())


def _parse(lines: Iterable[bytes]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn line: never committed
        if isinstance(record, dict):
            out.append(record)
    return out


def records(root: Path) -> list[dict[str, Any]]:
    """Every complete line, the rotated file's first (for reports and tests)."""
    return _merge(_read(root / ROTATED), _read(root / LEDGER))


def _read(path: Path) -> list[dict[str, Any]]:
    return _parse(path.read_bytes().splitlines()) if path.is_file() else []


def _merge(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rotated file's records then the current file's; the line carried over by
    a rotation appears once."""
    if old and new and new[0].get("window") == old[-1].get("window"):
        new = new[1:]
    return old + new


def tail(root: Path, n: int) -> list[dict[str, Any]]:
    """The last `n` complete records, reading only the end of the file."""
    if n <= 0:
        return []
    current = root / LEDGER
    new = _tail_of(current, n) if current.is_file() else []
    rotated = root / ROTATED
    if len(new) > n - 1 or not rotated.is_file():
        return new[-n:]
    return _merge(_tail_of(rotated, n), new)[-n:]


def _tail_of(path: Path, n: int) -> list[dict[str, Any]]:
    with path.open("rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        data, pos = b"", end
        while pos > 0 and data.count(b"\n") <= n:
            step = min(_TAIL_CHUNK, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    lines = data.splitlines()
    if pos > 0:
        lines = lines[1:]  # the first line may be partial
    return _parse(lines)[-n:]


def last(root: Path) -> dict[str, Any] | None:
    found = tail(root, 1)
    return found[0] if found else None


def rotate(root: Path, max_lines: int) -> bool:
    """Move a ledger of more than `max_lines` lines aside (replacing the older one);
    the new file starts with the last line, so the last record is always in it."""
    path = root / LEDGER
    if not path.is_file():
        return False
    with path.open("rb") as fh:
        lines = sum(1 for _ in fh)
    if lines <= max_lines:
        return False
    newest = last(root)
    os.replace(path, root / ROTATED)  # a crash here: tail() reads the rotated file
    if newest is not None:
        append(root, newest)
    log.info("ledger rotated after %d lines", lines)
    return True


# -- per-window detail and the finished mark ------------------------------------------
def _detail_path(root: Path, window: int) -> Path:
    return root / DETAILS / f"{window:08d}.json"


def write_detail(root: Path, window: int, detail: dict[str, Any]) -> str:
    """Write a window's detail durably (before its ledger line); returns its path."""
    path = _detail_path(root, window)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        fh.write(json.dumps(detail, separators=(",", ":")).encode())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return str(path.relative_to(root))


def detail(root: Path, record: dict[str, Any]) -> dict[str, Any]:
    """A record's detail: inline in lines written before details moved out."""
    if "stream_ids" in record:
        return record
    name = record.get("detail")
    if not name:
        return {}
    path = root / str(name)
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.error("window %s: detail %s unreadable (%s)", record.get("window"), path, exc)
        return {}
    return loaded if isinstance(loaded, dict) else {}


def prune_details(root: Path, keep: int) -> int:
    folder = root / DETAILS
    if not folder.is_dir():
        return 0
    files = sorted(folder.glob("*.json"))
    for path in files[: max(0, len(files) - keep)]:
        path.unlink(missing_ok=True)
    return max(0, len(files) - keep)


def mark_finished(root: Path, window: int) -> None:
    tmp = root / (FINISHED + ".tmp")
    tmp.write_text(f"{window}\n")
    os.replace(tmp, root / FINISHED)


def finished(root: Path) -> int | None:
    """The last window whose effects all happened (None: not known, e.g. an old root)."""
    try:
        return int((root / FINISHED).read_text().strip())
    except (OSError, ValueError):
        return None
