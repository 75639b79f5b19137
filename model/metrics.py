"""Ranking metrics over a full catalog: HR@k and NDCG@k with one target per case."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

KS = (10, 20)
METRICS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20")  # the names metrics_from_ranks(KS) gives


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each target among its row's scores (ties count against it)."""
    target_scores = scores.gather(1, targets.unsqueeze(1))  # (B, 1)
    higher = (scores > target_scores).sum(1)
    ties = (scores == target_scores).sum(1) - 1
    return higher + ties


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int] = (10, 20)) -> dict[str, np.ndarray]:
    """Per-case hit and NDCG at each k (a single relevant item: IDCG = 1)."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hit = ranks < k
        out[f"hr@{k}"] = hit.astype(np.float64)
        out[f"ndcg@{k}"] = np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    return out


def mean_metrics(per_case: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: float(values.mean()) if len(values) else 0.0 for name, values in per_case.items()}
