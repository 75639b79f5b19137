"""Decoding item images: the header checked before any pixel, and what is kept scaled
down to a bounded size with its aspect ratio."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from xsmoe.model.image_prep import ImageTooLarge, load_image


def _encoded(size: tuple[int, int], fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_large_image_is_kept_at_the_short_side_asked(fmt: str) -> None:
    image = load_image(_encoded((3000, 1500), fmt), shrink_to=512)
    assert image is not None and image.mode == "RGB"
    assert min(image.size) == 512 and abs(image.size[0] / image.size[1] - 2.0) < 0.01


def test_a_small_image_and_no_shrink_are_left_as_they_are() -> None:
    assert load_image(_encoded((300, 200), "PNG"), shrink_to=512).size == (300, 200)  # type: ignore[union-attr]
    assert load_image(_encoded((3000, 1500), "PNG")).size == (3000, 1500)  # type: ignore[union-attr]


def test_the_pixel_limit_is_checked_from_the_header() -> None:
    with pytest.raises(ImageTooLarge, match="4,500,000 pixels"):
        load_image(_encoded((3000, 1500), "PNG"), max_pixels=1_000_000, shrink_to=512)
