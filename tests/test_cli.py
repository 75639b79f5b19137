from __future__ import annotations

import json
from pathlib import Path

import pytest

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
