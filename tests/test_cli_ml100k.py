"""Integration: the CLI on MovieLens-100k with the real MiniLM encoder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from xsmoe.cli import main
from xsmoe.model.snapshot import load_current

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
    # 1 expert per stage, grown once: before the second window (not after the last)
    assert snap.manifest["experts"] == {"text": [2, 2]}
    assert snap.model.config.trained_windows == 2
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
    assert doc["variants"]["xsmoe"]["windows"][1]["experts"] == {"text": [2, 2]}
    assert (tmp_path / "results.png").stat().st_size > 10_000
    assert "| xsmoe |" in (tmp_path / "results.md").read_text()


def test_eval_rejects_unknown_variants(
    ml100k_env: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "--variants", "pop,nope"]) == 2
    assert "error: --variants: unknown ['nope']" in capsys.readouterr().err


def test_tune_scores_validation_only_and_eval_uses_the_choice(
    ml100k_env: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, _ = ml100k_env
    monkeypatch.setenv("XSMOE_DATA_DIR", str(root / "var"))
    monkeypatch.setenv("XSMOE_CACHE_DIR", str(root / "cache"))
    args = ["tune", "--variants", "sasrec-id", "--windows", "3", "--max-epochs", "1"]
    grid = ["--grid", "lr=1e-3,3e-3", "--grid", "max_len=10"]
    assert main([*args, *grid, "--out", str(tmp_path / "tune")]) == 0
    doc = json.loads((tmp_path / "tune" / "tune.json").read_text())
    assert [r["setting"] for r in doc["rows"]] == [
        {"lr": 0.001, "max_len": 10},
        {"lr": 0.003, "max_len": 10},
    ]
    assert all(0 <= r["val_ndcg@10"] <= 1 and len(r["per_window"]) == 2 for r in doc["rows"])
    assert "hr@10" not in json.dumps(doc)  # no test window was ranked
    best = max(doc["rows"], key=lambda r: r["val_ndcg@10"])["setting"]
    assert doc["best"] == {"sasrec-id": best}
    ev = ["eval", "--variants", "sasrec-id", "--windows", "3", "--max-epochs", "1"]
    assert main([*ev, "--tuned", str(tmp_path / "tune" / "tune.json"), "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["tuned"] == {"sasrec-id": best}
    capsys.readouterr()
    assert main([*ev, "--tuned", str(tmp_path / "results.json")]) == 2
    assert "not a tune.json" in capsys.readouterr().err
