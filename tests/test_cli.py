from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.deployment import own_files
from xsmoe.cli import main


@pytest.fixture
def tiny_env(
    monkeypatch: pytest.MonkeyPatch, tiny_bert_dir: Path, tiny_vit_dir: Path, tmp_path: Path
) -> Path:
    monkeypatch.setenv("XSMOE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("XSMOE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XSMOE_TEXT__MODEL", str(tiny_bert_dir))
    monkeypatch.setenv("XSMOE_TEXT__LAYERS", "[0, 2]")
    monkeypatch.setenv("XSMOE_IMAGE__MODEL", str(tiny_vit_dir))
    monkeypatch.setenv("XSMOE_IMAGE__LAYERS", "[0, 1, 2]")
    monkeypatch.setenv("XSMOE_IMAGE__IMAGE_SIZE", "32")
    monkeypatch.setenv("XSMOE_IMAGE__RESIZE_SIZE", "36")
    catalog = tmp_path / "shop.jsonl"
    catalog.write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                {"item_id": "a", "text": "toy story"},
                {"item_id": "b", "text": "war movie", "image": "missing.png"},
            ]
        )
    )
    return catalog


def test_features_build_then_reuse(tiny_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", "build", "--catalog", str(tiny_env)]) == 0
    out = capsys.readouterr().out
    assert "2 items (2 encoded, 0 reused)" in out and "text 2/2, image 0/2" in out
    assert (tiny_env.parent / "var" / "features" / "shop" / "meta.json").is_file()
    assert main(["features", "build", "--catalog", str(tiny_env)]) == 0
    assert "(0 encoded, 2 reused)" in capsys.readouterr().out


def test_unknown_encoder_path_fails_naming_the_setting(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XSMOE_TEXT__MODEL", "/no/such/encoder")
    assert main(["features", "build", "--catalog", str(tiny_env)]) == 2
    err = capsys.readouterr().err
    assert "XSMOE_TEXT__MODEL" in err and "/no/such/encoder" in err


def test_store_of_another_encoder_is_refused(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["features", "build", "--catalog", str(tiny_env)]) == 0
    monkeypatch.setenv("XSMOE_TEXT__LAYERS", "[1, 2]")
    assert main(["features", "build", "--catalog", str(tiny_env)]) == 2
    assert "text.layers: store has [0, 2], configured [1, 2]" in capsys.readouterr().err


def test_bad_catalog_line_is_reported(tiny_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny_env.write_text('{"item_id": "a"}\n{"text": "no id"}\n')
    assert main(["features", "build", "--catalog", str(tiny_env)]) == 2
    assert "shop.jsonl:2: 'item_id' is required" in capsys.readouterr().err


def test_bootstrap_and_eval_from_your_own_files(
    tiny_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from xsmoe.model.snapshot import load_current

    events = own_files(tiny_env)
    out = tiny_env.parent / "snapshots"
    own = ["--catalog", str(tiny_env), "--interactions", str(events)]
    assert main(["bootstrap", *own, "--out", str(out), "--max-epochs", "2"]) == 0
    assert "v000001 written" in capsys.readouterr().out
    snap = load_current(out)
    assert len(snap.item_ids) == 20 and snap.manifest["source"]["dataset"] == "shop"
    # every window of your own log is trained (not the demo's first half)
    assert snap.manifest["source"]["trained_interactions"] == 500
    assert main(["eval", *own, "--variants", "pop,xsmoe", "--windows", "3", "--max-epochs", "1",
                 "--out", str(tiny_env.parent / "eval")]) == 0  # fmt: skip
    doc = json.loads((tiny_env.parent / "eval" / "results.json").read_text())
    assert doc["dataset"] == "shop" and len(doc["variants"]["xsmoe"]["windows"]) == 2


def test_bad_own_files_get_line_numbered_errors(
    tiny_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = own_files(tiny_env)
    events.write_text("user_id,item_id,timestamp\nu0,p1,2026-01-01\nu0,p2,yesterday\n")
    assert main(["bootstrap", "--catalog", str(tiny_env), "--interactions", str(events)]) == 2
    assert "events.csv:3: 'timestamp' must be epoch seconds or ISO 8601" in capsys.readouterr().err
    assert main(["bootstrap", "--interactions", str(events)]) == 2
    assert "--interactions needs --catalog" in capsys.readouterr().err


def test_a_catalog_with_no_interactions_gets_a_content_only_snapshot(
    tiny_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from xsmoe.model.snapshot import load_current

    own_files(tiny_env)
    out = tiny_env.parent / "snapshots"
    assert main(["bootstrap", "--catalog", str(tiny_env), "--out", str(out)]) == 0
    assert "content-only (not trained yet)" in capsys.readouterr().out
    snap = load_current(out)
    assert snap.model.config.content_only and snap.manifest["source"]["trained_interactions"] == 0
    # A user is the mean of their items' content vectors: similar content comes first.
    history = torch.from_numpy(snap.embeddings[[3, 7]])
    torch.testing.assert_close(snap.model.user_embedding(history), history.mean(0))


def test_a_catalog_with_images_gets_an_image_tower(
    tiny_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from xsmoe.model.snapshot import load_current

    events = own_files(tiny_env, images=True)
    out = tiny_env.parent / "snapshots"
    own = ["--catalog", str(tiny_env), "--interactions", str(events)]
    assert main(["bootstrap", *own, "--out", str(out), "--max-epochs", "2"]) == 0
    snap = load_current(out)
    assert set(snap.model.config.shapes) == {"text", "image"}
    assert set(snap.manifest["experts"]) == {"text", "image"}
    assert snap.embeddings.shape == (20, snap.model.config.embed_dim)
