"""The windows ledger: one JSON line per closed window, the worker's commit point.

A window's line is appended (fsynced) after its candidate snapshot is saved and
before the pointer moves and its entries are acked. On restart the last line
says what may still be unacknowledged or unpublished, so a crash at any moment
neither loses an accepted event nor trains one twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

LEDGER = "windows.jsonl"


def append(root: Path, record: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with (root / LEDGER).open("a") as fh:
        fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def records(root: Path) -> list[dict[str, Any]]:
    """Every complete line (a line torn by a crash mid-write is ignored)."""
    path = root / LEDGER
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
