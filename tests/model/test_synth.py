"""The synthetic multimodal benchmark: seeded, in the public file formats, with drift."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from xsmoe.model.data import load_catalog, load_interactions
from xsmoe.model.synth import COLOURS, SynthConfig, generate

pytestmark = pytest.mark.timeout(120)

SMALL = SynthConfig(n_items=200, n_users=60, n_windows=4, events_per_window=300, seed=3)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_the_generator_is_seeded(tmp_path: Path) -> None:
    generate(SMALL, tmp_path / "a")
    generate(SMALL, tmp_path / "b")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    generate(SynthConfig(**{**SMALL.__dict__, "seed": 4}), tmp_path / "c")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_files_load_and_hold_what_the_benchmark_needs(tmp_path: Path) -> None:
    counts = generate(SMALL, tmp_path)
    items = load_catalog(tmp_path / "items.jsonl")
    events = load_interactions(tmp_path / "events.csv")
    assert len(items) == 200 and len(events) == counts["events"] > 1000
    assert {i.item_id for i in items} >= set(events.item_ids)
    assert any(i.text is None and i.image for i in items)  # image-only items
    assert any(i.image is None and i.text for i in items)  # text-only items
    assert all(i.image.is_file() for i in items if i.image)
    truth = json.loads((tmp_path / "synth.json").read_text())
    born = {it["item_id"]: it["window"] for it in truth["items"]}
    assert {born[i.item_id] for i in items} == set(range(SMALL.n_windows))  # new every window
    for item in truth["items"]:  # the text never names a visual attribute
        text = next(i.text for i in items if i.item_id == item["item_id"]) or ""
        assert not any(colour in text for colour in COLOURS)


def test_tastes_drift_with_the_season(tmp_path: Path) -> None:
    generate(SMALL, tmp_path)
    truth = json.loads((tmp_path / "synth.json").read_text())
    colour = {it["item_id"]: it["colour"] for it in truth["items"]}
    events = load_interactions(tmp_path / "events.csv")
    per_window = len(events) // SMALL.n_windows
    shares = []
    for w in range(SMALL.n_windows):
        picks = [colour[str(i)] for i in events.item_ids[w * per_window : (w + 1) * per_window]]
        season = truth["seasons"][w]
        shares.append(sum(c == season for c in picks) / len(picks))
    assert min(shares) > 2 / len(COLOURS)  # the season's colour is clicked far above chance


def test_seasons_last_their_length_and_recur() -> None:
    from xsmoe.model.synth import seasons

    ten = seasons(SynthConfig(n_windows=10, season_length=2))
    assert ten[0] == ten[1] and ten[1] != ten[2] and ten[2] == ten[3]
    assert ten[6] == ten[0]  # an earlier season comes back
    assert seasons(SynthConfig(n_windows=3, season_length=1)) == [0, 3, 5]
