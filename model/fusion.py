"""Fusion of modality vectors with a learned modality gate (the MAMEX idea).

Each modality vector is projected to the item embedding size; a gate (softmax
over modalities, computed from the concatenated projections) mixes them. A
modality an item lacks is masked out of the gate, never fed as zeros that
pretend to be content. An item with no modality at all gets the zero vector.
"""

from __future__ import annotations

import torch
from torch import nn


class ModalityGateFusion(nn.Module):
    def __init__(self, dims: dict[str, int], out_dim: int) -> None:
        super().__init__()
        self.names = list(dims)
        self.proj = nn.ModuleDict({name: nn.Linear(dim, out_dim) for name, dim in dims.items()})
        self.gate = nn.Linear(out_dim * len(dims), len(dims))

    def forward(
        self, vectors: dict[str, torch.Tensor], present: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        # vectors[m]: (B, D_m); present[m]: (B,) bool
        projected = [
            self.proj[m](vectors[m]) * present[m].unsqueeze(-1).to(vectors[m].dtype)
            for m in self.names
        ]  # each (B, d); a missing modality contributes zeros to the gate's input only
        stacked = torch.stack(projected, dim=1)  # (B, M, d)
        mask = torch.stack([present[m] for m in self.names], dim=1)  # (B, M)
        logits = self.gate(torch.cat(projected, dim=-1)).masked_fill(~mask, float("-inf"))
        any_present = mask.any(dim=1, keepdim=True)
        weights = torch.softmax(torch.where(any_present, logits, torch.zeros_like(logits)), -1)
        weights = weights * any_present  # no modality: zero vector, not NaN
        return (weights.unsqueeze(-1) * stacked).sum(dim=1)
