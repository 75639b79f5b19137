"""Integration: the CLI on MovieLens-100k with the real MiniLM encoder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from model.snapshot import load_current
from xsmoe.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ml100k_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A data dir with the ml-100k feature store built once, and the build's summary."""
    root = tmp_path_factory.mktemp("ml100k")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XSMOE_DATA_DIR", str(root / "var"))
        mp.setenv("XSMOE_CACHE_DIR", str(root / "cache"))
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["features", "build", "--dataset", "ml-100k"]) == 0
        yield root, out.getvalue()


def test_features_build_encodes_every_item_text_only(ml100k_env: tuple[Path, str]) -> None:
    _, summary = ml100k_env
    assert "1682 items (1682 encoded, 0 reused)" in summary
    assert "text 1682/1682, image 0/1682" in summary


def test_bootstrap_writes_a_current_snapshot(
    ml100k_env: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, _ = ml100k_env
    monkeypatch.setenv("XSMOE_DATA_DIR", str(root / "var"))
    monkeypatch.setenv("XSMOE_CACHE_DIR", str(root / "cache"))
    out = root / "snapshots"
    args = ["bootstrap", "--out", str(out), "--train-windows", "2", "--max-epochs", "2"]
    assert main(args) == 0
    assert "v000001 written" in capsys.readouterr().out
    snap = load_current(out)
    assert snap.version == "v000001" and len(snap.item_ids) == 1682
    assert snap.manifest["experts"] == {"text": [3, 3]}  # 1 + one expansion per window
    assert snap.manifest["source"]["trained_windows"] == 2


def test_eval_writes_results_for_every_variant(
    ml100k_env: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root, _ = ml100k_env
    monkeypatch.setenv("XSMOE_DATA_DIR", str(root / "var"))
    monkeypatch.setenv("XSMOE_CACHE_DIR", str(root / "cache"))
    args = ["eval", "--variants", "pop,xsmoe", "--windows", "3", "--max-epochs", "1"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    for name in ("pop", "xsmoe"):
        r = doc["variants"][name]
        assert set(r["avg"]) == {"hr@10", "ndcg@10", "hr@20", "ndcg@20"}
        assert len(r["windows"]) == 2 and 0.0 <= r["avg"]["hr@10"] <= 1.0
        assert {"hr@10", "ndcg@10"} <= set(r["cold"])
    assert doc["variants"]["xsmoe"]["windows"][1]["experts"] == {"text": [3, 3]}
    assert (tmp_path / "results.png").stat().st_size > 10_000
    assert "| xsmoe |" in (tmp_path / "results.md").read_text()


def test_eval_rejects_unknown_variants(ml100k_env: tuple[Path, str]) -> None:
    with pytest.raises(SystemExit, match="unknown \\['nope'\\]"):
        main(["eval", "--variants", "pop,nope"])
