from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from xsmoe import report


def _run(ndcg: float, seconds: float) -> dict[str, Any]:
    window = {
        "window": 1, "hr@10": 2 * ndcg, "ndcg@10": ndcg, "hr@20": 3 * ndcg, "ndcg@20": ndcg,
        "train_seconds": seconds, "epochs": 4, "experts": {"text": [2, 2]},
    }  # fmt: skip
    return {
        "avg": {k: window[k] for k in report.METRICS},
        "cold": {"hr@10": ndcg, "ndcg@10": ndcg, "cases": 3},
        "windows": [window],
        "train_seconds_per_window": seconds,
        "seconds_per_epoch": seconds / 4,
        "trainable_params": 10,
        "total_params": 20,
        "peak_rss_mb": 100.0,
    }


def test_combine_seeds_means_and_spread() -> None:
    combined = report.combine_seeds([_run(0.1, 2.0), _run(0.3, 4.0)], [0, 1])
    assert combined["avg"]["ndcg@10"] == pytest.approx(0.2)
    assert combined["avg_std"]["ndcg@10"] == pytest.approx(0.1)
    # sample std 0.1414 over sqrt(2) seeds
    assert combined["avg_se"]["ndcg@10"] == pytest.approx(0.1)
    assert combined["windows"][0]["train_seconds"] == pytest.approx(3.0)
    assert combined["train_seconds_per_window"] == pytest.approx(3.0)
    assert combined["seeds"] == [0, 1] and len(combined["per_seed_avg"]) == 2
    single = report.combine_seeds([_run(0.1, 2.0)], [7])
    assert single["avg_std"]["ndcg@10"] == 0.0 and single["seeds"] == [7]


def test_markdown_and_picture(tmp_path: Path) -> None:
    doc = {
        "dataset": "toy",
        "protocol": {"n_windows": 3},
        "seconds": 1.0,
        "seeds": [0],
        "variants": {"xsmoe": report.combine_seeds([_run(0.1, 2.0)], [0])},
    }
    table = report.markdown(doc)
    assert "| xsmoe | 0.2000 | 0.1000 ± 0.0000 |" in table
    assert "window 1: {'text': [2, 2]}" in table
    report.plot(doc, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
