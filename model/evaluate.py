"""Full-ranking evaluation of evaluation cases against every known item, and the
sampled ranking early stopping uses on a large catalog."""

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

# Scores one ranking batch may hold. Each costs 13 bytes while ranked (the float32
# score, a bool comparison and the int64 its sum counts in): 2^24 is ~220 MB, 16 cases
# a batch at 1M items.
SCORE_ELEMENTS = 1 << 24
QUERY_VECTORS = 1000  # histories handed over as real queries (an index's recall)


def embedding_scorer(model: Recommender, items: torch.Tensor) -> ScoreFn:
    """Score with the model against item embeddings computed beforehand (N, d): one
    pass over the catalog serves every ranking of the same model."""

    def score(history: torch.Tensor) -> torch.Tensor:
        return user_vectors(model, items, history) @ items.T

    return score


def model_scorer(model: Recommender, table: ItemTable) -> ScoreFn:
    """Score with the model: item embeddings are computed once for the whole table.
    Scores stay on the model's device (rank_cases follows them there)."""
    return embedding_scorer(model, model.item_embeddings(table))


@torch.no_grad()
def user_vectors(model: Recommender, items: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
    """(B, T) right-aligned history rows (PAD < 0) of `items` -> (B, d) user vectors."""
    history = history.to(items.device)
    valid = history >= 0
    vectors = items[history.clamp_min(0)] * valid.unsqueeze(-1)
    return model.user_embeddings(vectors, valid)


def popularity_scorer(counts: np.ndarray) -> ScoreFn:
    base = torch.from_numpy(counts.astype(np.float32))

    def score(history: torch.Tensor) -> torch.Tensor:
        return base.expand(history.shape[0], -1).clone()

    return score


def ranking_batch(n_items: int, batch_size: int = 512) -> int:
    """Cases per ranking batch: `batch_size`, fewer where the (B, N) scores would pass
    SCORE_ELEMENTS (memory bound; the ranks do not depend on it)."""
    return max(1, min(batch_size, SCORE_ELEMENTS // max(1, n_items)))


@torch.no_grad()
def rank_cases(
    score: ScoreFn, cases: EvalCases, known: np.ndarray, batch_size: int = 512
) -> np.ndarray:
    """(C, 2): per case, how many known, not-yet-seen items score above the target and
    how many tie with it (see `model.metrics`). Ranked on the device the scores are on,
    at most `batch_size` cases at a time and fewer on a large catalog (see ranking_batch)."""
    batch_size = ranking_batch(len(known), batch_size)
    unknown = torch.from_numpy(~known)
    mask = bool(unknown.any())  # every item known (the worker's case): nothing to mask
    ranks = []
    for lo in range(0, len(cases), batch_size):
        hi = min(lo + batch_size, len(cases))
        length = max(len(x) for x in cases.inputs[lo:hi])
        scores = score(right_align(cases.inputs[lo:hi], length)).float()
        if mask:
            unknown = unknown.to(scores.device)  # moved once, on the first batch
            scores[:, unknown] = float("-inf")
        for i, seen in enumerate(cases.exclude[lo:hi]):
            scores[i, torch.from_numpy(seen).to(scores.device)] = float("-inf")
        targets = torch.from_numpy(cases.targets[lo:hi]).to(scores.device)
        ranks.append(target_ranks(scores, targets).cpu().numpy())
        del scores  # before the next batch's are allocated
    return np.concatenate(ranks) if ranks else np.zeros((0, 2), np.int64)


# -- sampled ranking (early stopping on a large catalog) ------------------------------
def sampled_rows(
    cases: EvalCases, known: np.ndarray, sample: int, rng: np.random.Generator
) -> np.ndarray | None:
    """The rows a sampled ranking scores: every target, history and excluded row of
    the cases plus `sample` other known items drawn uniformly (sorted). None when the
    catalog has at most `sample` known items: rank them all, exactly."""
    if int(known.sum()) <= sample:
        return None
    needed = np.unique(np.concatenate([cases.targets, *cases.inputs, *cases.exclude]))
    others = np.flatnonzero(known)
    others = others[~np.isin(others, needed, assume_unique=True)]
    drawn = rng.choice(others, size=min(sample, len(others)), replace=False)
    return np.union1d(needed, drawn).astype(np.int64)


def restrict_cases(cases: EvalCases, rows: np.ndarray) -> EvalCases:
    """The cases with every row replaced by its position in `rows` (sorted, and holding
    every row the cases name: see sampled_rows)."""

    def at(x: np.ndarray) -> np.ndarray:
        return np.searchsorted(rows, x).astype(np.int64)

    return EvalCases(
        list(cases.users),
        [at(x) for x in cases.inputs],
        at(cases.targets),
        [at(x) for x in cases.exclude],
    )


@torch.no_grad()
def embed_rows(
    model: Recommender, table: ItemTable, rows: np.ndarray, batch_size: int = 2048
) -> torch.Tensor:
    """(len(rows), d) embeddings of these table rows (catalog identity kept: an item's
    ID residual is its own), on the model's device."""
    was_training = model.training
    model.eval()
    out = [
        model.encode_items(table.take(torch.from_numpy(rows[lo : lo + batch_size])))
        for lo in range(0, len(rows), batch_size)
    ]
    model.train(was_training)
    return torch.cat(out)


def sampled_ranks(
    model: Recommender, table: ItemTable, cases: EvalCases, known: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """rank_cases over `rows` only (see sampled_rows): the target against the sampled
    items, the way early stopping compares epochs on a catalog too large to rank."""
    items = embed_rows(model, table, rows)
    return rank_cases(embedding_scorer(model, items), restrict_cases(cases, rows), known[rows])


def sample_cases(cases: EvalCases, n: int, rng: np.random.Generator) -> EvalCases:
    """At most `n` of the cases, drawn uniformly (kept in their order)."""
    if len(cases) <= n:
        return cases
    keep = np.sort(rng.choice(len(cases), size=n, replace=False))
    return EvalCases(
        [cases.users[i] for i in keep],
        [cases.inputs[i] for i in keep],
        cases.targets[keep],
        [cases.exclude[i] for i in keep],
    )


def query_vectors(
    model: Recommender, items: torch.Tensor, cases: EvalCases, limit: int = QUERY_VECTORS
) -> np.ndarray:
    """(Q, d) float32 user vectors of the histories of at most `limit` of the cases
    (a fixed uniform sample): real queries an index can be checked against."""
    cases = sample_cases(cases, limit, np.random.default_rng(0))
    if not len(cases):
        return np.zeros((0, items.shape[1]), np.float32)
    length = max(len(x) for x in cases.inputs)
    users = user_vectors(model, items, right_align(cases.inputs, length))
    return np.ascontiguousarray(users.float().cpu().numpy())
