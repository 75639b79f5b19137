"""A small synthetic catalog and stream with a planted sequential pattern."""

from __future__ import annotations

import numpy as np
import torch

from xsmoe.model.data import Interactions
from xsmoe.model.item_tower import ItemTable
from xsmoe.model.recommender import RecommenderConfig
from xsmoe.model.user_encoder import UserEncoderConfig


def cyclic_stream(
    n_items: int = 60, n_users: int = 90, length: int = 16, seed: int = 0
) -> tuple[ItemTable, Interactions]:
    """Each user walks the cycle item i -> i+1 from a random start; item features are
    random (content identifies an item, nothing else)."""
    rng = np.random.default_rng(seed)
    features = torch.from_numpy(rng.normal(size=(n_items, 3, 16)).astype(np.float32))
    table = ItemTable({"text": features}, {"text": torch.ones(n_items, dtype=torch.bool)})
    rows = []
    for u in range(n_users):
        start = int(rng.integers(n_items))
        t0 = u * 1000.0  # users follow each other in time: windows hold whole users
        rows += [(f"u{u}", str((start + k) % n_items), t0 + k) for k in range(length)]
    return table, Interactions.from_rows(rows)


def small_config(experts: int = 1) -> RecommenderConfig:
    return RecommenderConfig.for_content(
        {"text": (3, 16)},
        experts_per_stage=experts,
        embed_dim=32,
        bottleneck=8,
        user=UserEncoderConfig(dim=32, max_len=10, dropout=0.0),
    )
