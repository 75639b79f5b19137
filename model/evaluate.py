"""Full-ranking evaluation of evaluation cases against every known item."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from xsmoe.model.item_tower import ItemTable
from xsmoe.model.metrics import target_ranks
from xsmoe.model.recommender import Recommender
from xsmoe.model.sequences import EvalCases, right_align

# (B, T) history rows (PAD < 0, right-aligned) -> (B, N) scores over all item rows
ScoreFn = Callable[[torch.Tensor], torch.Tensor]


def model_scorer(model: Recommender, table: ItemTable) -> ScoreFn:
    """Score with the model: item embeddings are computed once for the whole table.
    Scores stay on the model's device (rank_cases follows them there)."""
    items = model.item_embeddings(table)

    def score(history: torch.Tensor) -> torch.Tensor:
        history = history.to(items.device)
        valid = history >= 0
        vectors = items[history.clamp_min(0)] * valid.unsqueeze(-1)
        return model.user_embeddings(vectors, valid) @ items.T

    return score


def popularity_scorer(counts: np.ndarray) -> ScoreFn:
    base = torch.from_numpy(counts.astype(np.float32))

    def score(history: torch.Tensor) -> torch.Tensor:
        return base.expand(history.shape[0], -1).clone()

    return score


@torch.no_grad()
def rank_cases(
    score: ScoreFn, cases: EvalCases, known: np.ndarray, batch_size: int = 512
) -> np.ndarray:
    """(C, 2): per case, how many known, not-yet-seen items score above the target and
    how many tie with it (see `model.metrics`). Ranked on the device the scores are on."""
    unknown = torch.from_numpy(~known)
    ranks = []
    for lo in range(0, len(cases), batch_size):
        hi = min(lo + batch_size, len(cases))
        length = max(len(x) for x in cases.inputs[lo:hi])
        scores = score(right_align(cases.inputs[lo:hi], length)).float()
        unknown = unknown.to(scores.device)  # moved once, on the first batch
        scores[:, unknown] = float("-inf")
        for i, seen in enumerate(cases.exclude[lo:hi]):
            scores[i, torch.from_numpy(seen).to(scores.device)] = float("-inf")
        targets = torch.from_numpy(cases.targets[lo:hi]).to(scores.device)
        ranks.append(target_ranks(scores, targets).cpu().numpy())
    return np.concatenate(ranks) if ranks else np.zeros((0, 2), np.int64)
