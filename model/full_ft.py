"""The `full-ft` baseline: the text encoder's top layers fine-tuned end to end.

This is the cost XSMoE avoids. The frozen lower layers run once (their output is
cached); every training step runs the top `n_top` transformer layers forward and
backward over the batch's item texts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xsmoe.model.item_tower import ItemInputs


class FullFineTuneTower(nn.Module):
    cached: torch.Tensor  # (N, T, H) input of the first trained layer, for every item
    attention: torch.Tensor  # (N, T) bool
    has_text: torch.Tensor  # (N,) bool

    def __init__(
        self,
        model_dir: str,
        texts: Sequence[str | None],
        n_top: int,
        max_tokens: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        encoder = AutoModel.from_pretrained(model_dir).eval()
        n_layers = len(encoder.encoder.layer)
        if not 0 < n_top <= n_layers:
            raise ValueError(f"n_top must be within 1..{n_layers}, got {n_top}")
        tokens = tokenizer(
            [t or "" for t in texts],
            padding=True,
            truncation=True,
            max_length=max_tokens,
            return_tensors="pt",
        )
        cached = []
        with torch.no_grad():
            for lo in range(0, len(texts), 256):
                batch = {k: v[lo : lo + 256] for k, v in tokens.items()}
                hidden = encoder(**batch, output_hidden_states=True).hidden_states
                cached.append(hidden[n_layers - n_top])
        self.register_buffer("cached", torch.cat(cached), persistent=False)  # (N, T, H)
        self.register_buffer("attention", tokens["attention_mask"].bool(), persistent=False)
        self.register_buffer("has_text", torch.tensor([bool(t) for t in texts]), persistent=False)
        self.top = nn.ModuleList(encoder.encoder.layer[n_layers - n_top :]).train()
        self.proj = nn.Linear(int(encoder.config.hidden_size), embed_dim)

    def forward(self, inputs: ItemInputs) -> torch.Tensor:
        rows = inputs.rows
        mask = self.attention[rows]  # (B, T)
        length = int(mask.sum(1).max())
        mask = mask[:, :length]
        h = self.cached[rows, :length]
        additive = torch.zeros(mask.shape, dtype=h.dtype, device=h.device).masked_fill(
            ~mask, torch.finfo(h.dtype).min
        )
        additive = additive[:, None, None, :]  # (B, 1, 1, T)
        for layer in self.top:
            out = layer(h, attention_mask=additive)
            h = out[0] if isinstance(out, tuple) else out
        weights = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        vectors: torch.Tensor = self.proj(pooled)
        return vectors * self.has_text[rows].unsqueeze(-1).to(h.dtype)
