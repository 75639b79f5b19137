"""Integration: the offline-shipped MiniLM and DINOv2 encoders (real weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xsmoe.model import dinov2_onnx
from xsmoe.model.encoders import ImageEncoder, ImageEncoderConfig, TextEncoder, TextEncoderConfig

pytestmark = pytest.mark.integration


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_minilm_similar_titles_are_closer(tmp_path: Path) -> None:
    enc = TextEncoder(TextEncoderConfig(), cache_dir=tmp_path)
    out = enc.encode(
        [
            "Toy Story (1995). Genres: Animation, Children's, Comedy",
            "Toy Story 2 (1999). Genres: Animation, Children's, Comedy",
            "Schindler's List (1993). Genres: Drama, War",
        ]
    )
    assert out.shape == (3, 3, 384)
    last = out[:, -1]
    assert _cos(last[0], last[1]) > _cos(last[0], last[2]) + 0.1


def test_dinov2_flip_invariant_noise_far(tmp_path: Path) -> None:
    from skimage import data

    folder = dinov2_onnx.build(tmp_path)  # converts (and checks a strict load) on first use
    assert (folder / "model.safetensors").is_file()
    enc = ImageEncoder(ImageEncoderConfig(), cache_dir=tmp_path)
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 450, 3), np.uint8))
    # Photos of objects. (Fur- or tissue-textured photos such as data.chelsea()
    # sit nearer to noise, ~0.7; the flip is still far closer than the noise.)
    for name in ("astronaut", "rocket", "camera"):
        photo = Image.fromarray(getattr(data, name)()).convert("RGB")
        out = enc.encode([photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise])
        assert out.shape == (3, 3, 384)
        last = out[:, -1]
        assert _cos(last[0], last[1]) > 0.9, name
        assert _cos(last[0], last[2]) < 0.3, name
