from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xsmoe.model.encoders import (
    ImageEncoder,
    ImageEncoderConfig,
    TextEncoder,
    TextEncoderConfig,
    feature_shape,
)
from xsmoe.model.errors import EncoderLoadError
from xsmoe.model.image_prep import IMAGENET_MEAN, IMAGENET_STD, resize_center_crop, to_pixel_values


def _text(folder: Path, tmp_path: Path, **kw: object) -> TextEncoder:
    config = TextEncoderConfig(model=str(folder), **kw)  # type: ignore[arg-type]
    return TextEncoder(config, cache_dir=tmp_path)


def test_text_shape_dtype_and_frozen(tiny_bert_dir: Path, tmp_path: Path) -> None:
    enc = _text(tiny_bert_dir, tmp_path, layers=(0, 1, 2))
    out = enc.encode(["toy story", "war movie"])
    assert out.shape == (2, 3, 32) and out.dtype == np.float32
    assert not enc.model.training
    assert not any(p.requires_grad for p in enc.model.parameters())
    np.testing.assert_array_equal(out, enc.encode(["toy story", "war movie"]))  # no dropout


def test_mean_pooling_ignores_padding(tiny_bert_dir: Path, tmp_path: Path) -> None:
    enc = _text(tiny_bert_dir, tmp_path, layers=(0, 2), pooling="mean")
    alone = enc.encode(["toy story"])
    padded = enc.encode(["toy story", "the action comedy movie about war and space night"])
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)


def test_cls_pooling_reads_cls_and_mean_pools_layer0(tiny_bert_dir: Path, tmp_path: Path) -> None:
    enc = _text(tiny_bert_dir, tmp_path, layers=(0, 1, 2), pooling="cls")
    texts = ["toy story", "war drama night"]
    out = enc.encode(texts)
    batch = enc.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = enc.model(**batch, output_hidden_states=True).hidden_states
    np.testing.assert_allclose(out[:, 2], hidden[2][:, 0].numpy(), atol=1e-5)
    # Layer 0's [CLS] is the same for every item; the mean-pooled one is not.
    assert torch.allclose(hidden[0][0, 0], hidden[0][1, 0])
    assert not np.allclose(out[0, 0], out[1, 0])


def test_truncation_to_max_tokens(tiny_bert_dir: Path, tmp_path: Path) -> None:
    enc = _text(tiny_bert_dir, tmp_path, layers=(2,), max_tokens=4)
    a, b = enc.encode(["toy story war space star", "toy story love night day"])
    np.testing.assert_allclose(a, b, atol=1e-6)  # differ only after token 2
    full = _text(tiny_bert_dir, tmp_path, layers=(2,), max_tokens=40)
    c, d = full.encode(["toy story war space star", "toy story love night day"])
    assert not np.allclose(c, d)


def test_bad_layers_name_the_setting(tiny_bert_dir: Path, tmp_path: Path) -> None:
    for layers in [(0, 5), (2, 1), ()]:
        with pytest.raises(EncoderLoadError) as err:
            feature_shape(TextEncoderConfig(model=str(tiny_bert_dir), layers=layers), tmp_path)
        assert err.value.field == "layers"


def test_unknown_model_path_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(EncoderLoadError) as err:
        TextEncoder(TextEncoderConfig(model=str(tmp_path / "missing")), cache_dir=tmp_path)
    assert (err.value.modality, err.value.field) == ("text", "model")
    with pytest.raises(EncoderLoadError) as err:
        feature_shape(ImageEncoderConfig(model="./no/such/vit"), tmp_path)
    assert (err.value.modality, err.value.field) == ("image", "model")


def test_not_a_model_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EncoderLoadError, match="cannot load"):
        feature_shape(TextEncoderConfig(model=str(tmp_path / "empty")), tmp_path)


def _photo(size: tuple[int, int] = (50, 40)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def test_resize_center_crop() -> None:
    out = resize_center_crop(_photo((80, 40)), resize=36, crop=32)
    assert out.size == (32, 32)
    tall = resize_center_crop(_photo((20, 90)), resize=40, crop=40)
    assert tall.size == (40, 40)


def test_pixel_normalisation() -> None:
    grey = Image.new("RGB", (10, 10), (128, 64, 255))
    px = to_pixel_values([grey], resize=8, crop=8)
    assert px.shape == (1, 3, 8, 8)
    expected = (np.array([128, 64, 255]) / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(px[0, :, 4, 4].numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("fixture", ["tiny_vit_dir", "tiny_dinov2_dir"])
def test_image_encoder_shapes(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    folder: Path = request.getfixturevalue(fixture)
    config = ImageEncoderConfig(model=str(folder), layers=(0, 1, 2), image_size=28, resize_size=32)
    enc = ImageEncoder(config, cache_dir=tmp_path)
    out = enc.encode([_photo(), _photo((30, 70)).convert("L")])
    assert out.shape == (2, 3, 32) and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert not any(p.requires_grad for p in enc.model.parameters())
    assert feature_shape(config, tmp_path) == (3, 32)
