"""Item towers: item rows -> item vectors.

`ContentTower` (the product): side MoE per modality over cached features, then
gated fusion. No item-ID parameters, so a brand-new item is scored as soon as
its features exist. `IdTower` (the sasrec-id baseline): a learned embedding
per item row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn

from xsmoe.model.features import FeatureStore
from xsmoe.model.fusion import ModalityGateFusion
from xsmoe.model.side_moe import SideMoE, SideMoEConfig


@dataclass(frozen=True)
class ItemTable:
    """Cached features of every item as tensors, indexed by store row."""

    features: dict[str, torch.Tensor]  # (N, L, H) float32 (or the model's dtype, see `to`)
    present: dict[str, torch.Tensor]  # (N,) bool
    # True: row i is catalog row i (the model may know it); False: items the model
    # has never seen, numbered from 0 (e.g. new items embedded at serving time)
    catalog: bool = True

    @classmethod
    def from_store(cls, store: FeatureStore) -> ItemTable:
        return cls(
            {
                m: torch.from_numpy(np.array(store.features(m), np.float32))
                for m in store.modalities
            },
            {m: torch.from_numpy(store.present(m).copy()) for m in store.modalities},
        )

    def __len__(self) -> int:
        return len(next(iter(self.present.values())))

    @property
    def device(self) -> torch.device:
        return next(iter(self.present.values())).device

    def to(self, device: torch.device, dtype: torch.dtype) -> ItemTable:
        """The table on `device`, features in `dtype` (a model's): moved once per window,
        not once per batch."""
        return ItemTable(
            {m: f.to(device=device, dtype=dtype) for m, f in self.features.items()},
            {m: p.to(device) for m, p in self.present.items()},
            self.catalog,
        )

    def take(self, rows: torch.Tensor) -> ItemInputs:
        rows = rows.to(self.device)
        return ItemInputs(
            rows,
            {m: f[rows] for m, f in self.features.items()},
            {m: p[rows] for m, p in self.present.items()},
            self.catalog,
        )


@dataclass(frozen=True)
class ItemInputs:
    rows: torch.Tensor  # (B,) long
    features: dict[str, torch.Tensor]  # (B, L, H)
    present: dict[str, torch.Tensor]  # (B,)
    catalog: bool = True  # rows are catalog rows (see ItemTable.catalog)

    def to(self, device: torch.device, dtype: torch.dtype) -> ItemInputs:
        """On `device`, floating features in `dtype` (no copy where they already are)."""
        return ItemInputs(
            self.rows.to(device),
            {m: f.to(device=device, dtype=dtype) for m, f in self.features.items()},
            {m: p.to(device) for m, p in self.present.items()},
            self.catalog,
        )


class ContentTower(nn.Module):
    def __init__(
        self,
        shapes: dict[str, tuple[int, int]],  # modality -> (n_layers, hidden)
        experts: dict[str, tuple[int, ...]],
        embed_dim: int,
        bottleneck: int,
        max_experts: int,
        id_rows: int = 0,
    ) -> None:
        super().__init__()
        self.moe = nn.ModuleDict(
            {
                m: SideMoE(SideMoEConfig(hidden, experts[m], bottleneck, max_experts=max_experts))
                for m, (_, hidden) in shapes.items()
            }
        )
        self.fusion = ModalityGateFusion(
            {m: hidden for m, (_, hidden) in shapes.items()}, embed_dim
        )
        # Optional warm-item ID residual: a learned vector per catalog row added to the
        # content vector. Zero-initialised, and Adam never moves a row that got no
        # gradient, so items the model has not trained on (new, cold) stay pure content.
        self.id_residual: nn.Embedding | None = None
        if id_rows > 0:
            self.id_residual = nn.Embedding(id_rows, embed_dim)
            nn.init.zeros_(self.id_residual.weight)

    @property
    def ladders(self) -> dict[str, SideMoE]:
        return {m: cast(SideMoE, moe) for m, moe in self.moe.items()}

    def forward(self, inputs: ItemInputs) -> torch.Tensor:
        vectors = {m: moe(inputs.features[m]) for m, moe in self.moe.items()}
        fused: torch.Tensor = self.fusion(vectors, inputs.present)
        if self.id_residual is None or not inputs.catalog:
            return fused
        n = self.id_residual.num_embeddings
        known = (inputs.rows < n).unsqueeze(-1)  # rows added after the model was built: none
        residual: torch.Tensor = self.id_residual(inputs.rows.clamp_max(n - 1))
        return fused + residual * known


class IdTower(nn.Module):
    def __init__(self, n_items: int, embed_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_items, embed_dim)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def forward(self, inputs: ItemInputs) -> torch.Tensor:
        return cast(torch.Tensor, self.embedding(inputs.rows))
