"""Image loading and preprocessing with Pillow + numpy (torchvision does not work here)."""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from xsmoe.model.errors import ModelError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageTooLarge(ModelError):
    """An image declares more pixels than allowed; refused before its pixels are decoded."""


def limit_decoding(max_pixels: int) -> None:
    """Make Pillow itself refuse, anywhere in this process, an image over `max_pixels`
    (it only warns by default, and refuses at twice its own 89 M): the size checked in
    `load_image` is not the only way in (an ICO or a multi-frame file opens a nested
    image while loading). Process-wide, so the entrypoint calls it once."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def _scaled(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(w, h) scaled so that the shorter side is `short_side`, the aspect kept."""
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def load_image(
    source: str | Path | bytes,
    *,
    max_pixels: int | None = None,
    formats: tuple[str, ...] | None = None,
    shrink_to: int | None = None,
) -> Image.Image | None:
    """Decode an image file or bytes to RGB; None (and a warning) if it cannot be read.

    `max_pixels`: an image whose header declares more pixels raises ImageTooLarge
    before anything is decoded (Pillow's open reads only the header). `formats`:
    the Pillow format names tried (None: every format Pillow knows). `shrink_to`:
    an image whose shorter side is longer is scaled down to it (a JPEG is decoded at
    a reduced size already), so what is kept costs a bounded amount of memory."""
    where = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        raw = io.BytesIO(source) if isinstance(source, bytes) else source
        with Image.open(raw, formats=formats) as img:
            width, height = img.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageTooLarge(
                    f"{width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}"
                )
            if shrink_to is not None and min(width, height) > shrink_to:
                img.draft("RGB", _scaled(width, height, shrink_to))  # JPEG: decode smaller
            img.load()
            rgb = img.convert("RGB")
            if shrink_to is not None and min(rgb.size) > shrink_to:
                rgb = rgb.resize(_scaled(*rgb.size, shrink_to), Image.Resampling.BICUBIC)
            return rgb
    except FileNotFoundError:
        log.warning("image %s not found: item stored without the image modality", where)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        if max_pixels is not None:  # Pillow's own check (limit_decoding) came first
            found = re.search(r"\((\d+) pixels\)", str(exc))
            size = f"{int(found[1]):,} pixels" if found else "too many pixels"
            raise ImageTooLarge(f"{size}; the limit is {max_pixels:,}") from exc
        log.warning("image %s too large (%s): item stored without the image modality", where, exc)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        log.warning("image %s unreadable (%s): item stored without the image modality", where, exc)
    return None


def resize_center_crop(img: Image.Image, resize: int, crop: int) -> Image.Image:
    """Resize the shorter side to `resize` (bicubic), then take the central `crop` square."""
    width, height = img.size
    scale = resize / min(width, height)
    new_w, new_h = max(crop, round(width * scale)), max(crop, round(height * scale))
    img = img.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - crop) // 2, (new_h - crop) // 2
    return img.crop((left, top, left + crop, top + crop))


def to_pixel_values(
    images: Sequence[Image.Image],
    *,
    resize: int,
    crop: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Batch of RGB images -> normalised float tensor (B, 3, crop, crop)."""
    arrays = [
        np.asarray(resize_center_crop(img.convert("RGB"), resize, crop), dtype=np.float32)
        for img in images
    ]
    batch = np.stack(arrays) / np.float32(255.0)  # (B, H, W, 3)
    normed = (batch - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(normed.transpose(0, 3, 1, 2), dtype=np.float32))
