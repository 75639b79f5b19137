"""SASRec-style user encoder: causal Transformer over the user's recent item vectors."""

from __future__ import annotations

import logging
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

log = logging.getLogger(__name__)
StateFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class UserEncoderConfig:
    dim: int = 128
    # Items read per user: training chunks, the worker's gate and serving alike. 10 was
    # chosen over 50 on MovieLens-100k's validation tails for every variant.
    max_len: int = 10
    n_blocks: int = 2
    n_heads: int = 2
    ffn_mult: int = 4
    dropout: float = 0.1
    init_std: float = 0.02  # position embeddings


class UserEncoder(nn.Module):
    """(B, T, d) right-aligned item vectors + (B, T) padding mask -> (B, T, d)."""

    def __init__(self, config: UserEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.positions = nn.Embedding(config.max_len, config.dim)
        # SASRec/BERT scale: PyTorch's default N(0, 1) gives position vectors of
        # norm ~sqrt(dim), which drown the item vectors they are added to.
        nn.init.normal_(self.positions.weight, std=config.init_std)
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            config.dim,
            config.n_heads,
            config.dim * config.ffn_mult,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, config.n_blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, items: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        # items: (B, T, d), valid: (B, T) bool, True where a real item sits
        b, t, _ = items.shape
        if t > self.config.max_len:
            items, valid, t = (
                items[:, -self.config.max_len :],
                valid[:, -self.config.max_len :],
                self.config.max_len,
            )
        pos = torch.arange(self.config.max_len - t, self.config.max_len, device=items.device)
        x = self.dropout(items + self.positions(pos)) * valid.unsqueeze(-1)
        # Query i may see key j when j <= i and j is a real item; i always sees
        # itself, so no row is fully masked (no NaN on padding rows).
        causal = torch.ones(t, t, dtype=torch.bool, device=items.device).tril()
        allowed = causal & (
            valid.unsqueeze(1) | torch.eye(t, dtype=torch.bool, device=items.device)
        )
        # the additive mask in the items' dtype: attention refuses a float mask of another
        mask = torch.zeros(b, t, t, dtype=items.dtype, device=items.device)
        mask = mask.masked_fill(~allowed, float("-inf"))
        mask = mask.repeat_interleave(self.config.n_heads, dim=0)  # (B*heads, T, T)
        out: torch.Tensor = self.norm(self.blocks(x, mask=mask))
        return out * valid.unsqueeze(-1)

    @torch.inference_mode()
    def last_state(self, items: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, T, d) right-aligned item vectors + (B, T) mask -> (B, d): forward()'s last
        position, computing only what it needs. Eval mode only (no dropout).

        Serving reads one state per user, but forward() runs every query row through
        every block. Here the blocks before the last run in full (their every position
        is a key/value of the next block); the last block attends from the last row only,
        and its feed-forward and the final LayerNorm see one row. Same parameters as
        forward(), read from the nn.TransformerEncoderLayer modules.
        """
        if self.training:
            raise RuntimeError("last_state is the eval-mode path; training uses forward()")
        return _last_state(self._shape(), items, valid, *self.serving_weights())

    def _shape(self) -> _Shape:
        layers = list(self.blocks.layers)
        eps = (*(float(x.norm1.eps) for x in layers), float(self.norm.eps))
        return _Shape(self.config.dim, self.config.n_heads, self.config.max_len, len(layers), eps)

    def serving_weights(self) -> list[torch.Tensor]:
        """The parameters last_state reads, in its order (the tensors themselves)."""
        out = [self.positions.weight]
        for layer in self.blocks.layers:
            attn = layer.self_attn
            out += [layer.norm1.weight, layer.norm1.bias, attn.in_proj_weight]
            out += [attn.in_proj_bias, attn.out_proj.weight, attn.out_proj.bias]
            out += [layer.norm2.weight, layer.norm2.bias, layer.linear1.weight]
            out += [layer.linear1.bias, layer.linear2.weight, layer.linear2.bias]
        return [*out, self.norm.weight, self.norm.bias]


@dataclass(frozen=True)
class _Shape:
    """What last_state's computation depends on besides the weights: one trace each."""

    dim: int
    heads: int
    max_len: int
    n_layers: int
    eps: tuple[float, ...]  # each layer's first LayerNorm's, then the final one's


PER_LAYER = 12  # serving_weights per Transformer layer


def _last_state(
    shape: _Shape, items: torch.Tensor, valid: torch.Tensor, *weights: torch.Tensor
) -> torch.Tensor:
    """UserEncoder.last_state with its parameters passed in: a function of the
    architecture alone, so one trace serves every encoder of that shape."""
    t, d, heads = items.shape[1], shape.dim, shape.heads  # d static: ONNX export needs it
    if t > shape.max_len:
        items, valid = items[:, -shape.max_len :], valid[:, -shape.max_len :]
        t = shape.max_len
    positions, final_w, final_b = weights[0], weights[-2], weights[-1]
    x = (items + positions[shape.max_len - t :]) * valid.unsqueeze(-1)
    # the same rule as forward(): j <= i, and j real or j == i; True = may attend
    # from arange, not eye/tril: ONNX Runtime has no boolean EyeLike
    pos = torch.arange(t, device=items.device)
    eye, causal = pos[:, None] == pos, pos[:, None] >= pos
    allowed = (causal & (valid.unsqueeze(1) | eye)).unsqueeze(1)  # (B, 1, T, T)
    for n in range(shape.n_layers):
        n1w, n1b, w, bias, ow, ob, n2w, n2b, l1w, l1b, l2w, l2b = weights[
            1 + n * PER_LAYER : 1 + (n + 1) * PER_LAYER
        ]
        eps = shape.eps[n]
        h = F.layer_norm(x, (d,), n1w, n1b, eps)
        if n == shape.n_layers - 1:  # query from the last row only; keys, values from all
            q = F.linear(h[:, -1:], w[:d], bias[:d])
            k, v = F.linear(h, w[d:], bias[d:]).split(d, dim=-1)
            mask = allowed[:, :, -1:]
            x = x[:, -1:]
        else:
            q, k, v = F.linear(h, w, bias).split(d, dim=-1)
            mask = allowed
        q, k, v = (z.unflatten(-1, (heads, d // heads)).transpose(1, 2) for z in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, Tq, hd)
        x = x + F.linear(a.transpose(1, 2).flatten(2), ow, ob)
        h = F.layer_norm(x, (d,), n2w, n2b, eps)
        x = x + F.linear(F.gelu(F.linear(h, l1w, l1b)), l2w, l2b)
    out = F.layer_norm(x[:, -1], (d,), final_w, final_b, shape.eps[-1])
    return out * valid[:, -1:]


class _Traceable(nn.Module):
    """_last_state of one shape as a module's forward, for torch.jit.trace."""

    def __init__(self, shape: _Shape) -> None:
        super().__init__()
        self.shape = shape

    def forward(
        self, items: torch.Tensor, valid: torch.Tensor, *weights: torch.Tensor
    ) -> torch.Tensor:
        return _last_state(self.shape, items, valid, *weights)


# One trace per architecture, not per encoder: every trace adds types to TorchScript's
# global compilation unit that are never freed (about 4 MB a snapshot, so a replica
# swapping every window grew without bound). The weights are inputs of the trace.
_TRACES: dict[_Shape, Callable[..., torch.Tensor] | None] = {}
# Per encoder, weakly: its serving function, bound to its own parameter tensors (the
# tensors, not copies: in-place updates, as training makes, stay visible).
_BOUND: weakref.WeakKeyDictionary[UserEncoder, StateFn] = weakref.WeakKeyDictionary()


def serving_state(encoder: UserEncoder) -> StateFn:
    """last_state, traced with TorchScript once per architecture on CPU float32
    (bench/encoder.py: about half the per-call cost at batch 1, a quarter less at 8:
    the tiny ops are dominated by Python dispatch). A trace is checked against
    last_state on other batch sizes and lengths than it was traced with; any failure
    keeps last_state."""
    fn = _BOUND.get(encoder)
    if fn is not None:
        return fn
    fn = encoder.last_state
    param = encoder.positions.weight
    if param.device.type == "cpu" and param.dtype == torch.float32:
        shape = encoder._shape()
        if shape not in _TRACES:
            try:
                _TRACES[shape] = _trace(encoder, shape)
            except Exception as exc:  # the eager path is correct, only slower
                log.warning("user encoder not traced, eager serving path: %s", exc)
                _TRACES[shape] = None
        traced = _TRACES[shape]
        if traced is not None:
            weights = encoder.serving_weights()

            def fn(items: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
                with torch.inference_mode():
                    return traced(items, valid, *weights)

    _BOUND[encoder] = fn
    return fn


def traced_for(encoder: UserEncoder) -> Callable[..., torch.Tensor] | None:
    """The trace serving_state uses for this encoder's architecture (None: eager)."""
    serving_state(encoder)
    return _TRACES.get(encoder._shape())


def _trace(encoder: UserEncoder, shape: _Shape) -> Callable[..., torch.Tensor]:
    gen = torch.Generator().manual_seed(0)

    def example(b: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        valid = torch.ones(b, t, dtype=torch.bool)
        valid[0, : t // 2] = False  # right-aligned padding in the first row
        return torch.randn(b, t, shape.dim, generator=gen) * valid.unsqueeze(-1), valid

    weights = encoder.serving_weights()
    with torch.inference_mode(), warnings.catch_warnings():
        # the trace fixes `t > max_len` to False: serving never passes more (history_rows)
        warnings.simplefilter("ignore")
        items, valid = example(2, shape.max_len)
        traced = torch.jit.trace(_Traceable(shape).eval(), (items, valid, *weights))
        for b, t in ((1, 1), (3, max(1, shape.max_len // 2)), (5, shape.max_len)):
            items, valid = example(b, t)
            if not torch.allclose(
                traced(items, valid, *weights), encoder.last_state(items, valid), atol=1e-5
            ):
                raise RuntimeError(f"trace differs from last_state at batch {b}, length {t}")
    return traced  # type: ignore[no-any-return]
