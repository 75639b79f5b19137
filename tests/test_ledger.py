"""The windows ledger file: torn lines, rotation, tail reads, details."""

from __future__ import annotations

from pathlib import Path

from xsmoe.common import ledger


def _record(n: int) -> dict[str, object]:
    return {"window": n, "outcome": "promoted", "version": f"v{n + 2:06d}", "events": 10}


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path: Path) -> None:
    ledger.append(tmp_path, _record(0))
    with (tmp_path / ledger.LEDGER).open("ab") as fh:
        fh.write(b'{"window":1,"outco')  # the process died mid-write: never committed
    assert [r["window"] for r in ledger.records(tmp_path)] == [0]
    ledger.append(tmp_path, _record(1))  # the next commit must not be glued onto it
    assert [r["window"] for r in ledger.records(tmp_path)] == [0, 1]
    assert ledger.last(tmp_path) == _record(1)


def test_rotation_keeps_the_last_record_and_tail_reads_across_files(tmp_path: Path) -> None:
    for n in range(25):
        ledger.append(tmp_path, _record(n))
        ledger.rotate(tmp_path, max_lines=10)
    assert (tmp_path / ledger.ROTATED).is_file()
    assert len((tmp_path / ledger.LEDGER).read_text().splitlines()) <= 10
    assert [r["window"] for r in ledger.tail(tmp_path, 3)] == [22, 23, 24]
    windows = [r["window"] for r in ledger.records(tmp_path)]
    assert windows == sorted(set(windows)) and windows[-1] == 24  # no line twice
    (tmp_path / ledger.LEDGER).unlink()  # a crash between the rename and the new file
    assert ledger.last(tmp_path) is not None


def test_tail_of_a_long_ledger_reads_only_the_end(tmp_path: Path) -> None:
    big = {"window": 0, "pad": "x" * 200_000}
    ledger.append(tmp_path, big)
    for n in range(1, 4):
        ledger.append(tmp_path, _record(n))
    assert [r["window"] for r in ledger.tail(tmp_path, 2)] == [2, 3]
    assert [r["window"] for r in ledger.tail(tmp_path, 10)] == [0, 1, 2, 3]


def test_details_live_beside_the_ledger_and_are_pruned(tmp_path: Path) -> None:
    for n in range(5):
        name = ledger.write_detail(tmp_path, n, {"stream_ids": [f"{n}-0", f"{n}-1"]})
        ledger.append(tmp_path, {**_record(n), "detail": name, "digest": ledger.digest([])})
    assert ledger.detail(tmp_path, ledger.last(tmp_path) or {})["stream_ids"] == ["4-0", "4-1"]
    assert ledger.prune_details(tmp_path, keep=2) == 3
    assert ledger.detail(tmp_path, ledger.records(tmp_path)[0]) == {}
    assert ledger.digest(["2-0", "10-0"]) == ledger.digest(["10-0", "2-0"])
