"""The compact id list: rows both ways, duplicates found, equal to the list it holds."""

from __future__ import annotations

from xsmoe.model.item_ids import ItemIds


def test_ids_and_rows_both_ways() -> None:
    raw = [f"item-{i}" for i in range(5000)] + ["é-ünïcode", "", "x" * 300]
    ids = ItemIds(raw)
    assert len(ids) == len(raw) and ids == raw and list(ids) == raw
    assert [ids[r] for r in (0, 4999, 5000, 5001, -1)] == [
        raw[r] for r in (0, 4999, 5000, 5001, -1)
    ]
    assert ids[2:5] == raw[2:5]
    assert all(ids.get(i) == r for r, i in enumerate(raw))
    assert ids.rows(["item-7", "nope", "é-ünïcode", "item-7"]) == [7, None, 5000, 7]
    assert "item-3" in ids and "item-5000" not in ids and 3 not in ids
    assert ids.duplicates() == []


def test_duplicates_are_found() -> None:
    assert ItemIds(["a", "b", "a", "c", "b", "a"]).duplicates() == ["a", "b"]


def test_an_empty_list() -> None:
    ids = ItemIds([])
    assert len(ids) == 0 and list(ids) == [] and ids.get("a") is None and ids.rows([]) == []
