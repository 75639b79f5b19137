"""Image loading and preprocessing with Pillow + numpy (torchvision does not work here)."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_image(source: str | Path | bytes) -> Image.Image | None:
    """Decode an image file or bytes to RGB; None (and a warning) if it cannot be read."""
    where = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        raw = io.BytesIO(source) if isinstance(source, bytes) else source
        with Image.open(raw) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        log.warning("image %s not found: item stored without the image modality", where)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
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
