"""In-batch softmax cross-entropy at every position, with logQ correction."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def inbatch_softmax_loss(
    states: torch.Tensor,  # (B, T, d) user state per position
    targets: torch.Tensor,  # (B, T) item rows, < 0 where no target
    inputs: torch.Tensor,  # (B, T) item rows, < 0 for padding
    candidate_rows: torch.Tensor,  # (U,) sorted unique rows of the batch
    candidate_vectors: torch.Tensor,  # (U, d)
    log_pop: torch.Tensor,  # (U,) log popularity of each candidate (logQ)
) -> torch.Tensor:
    """Mean CE over real positions; a user's own other items are masked out."""
    n = len(candidate_rows)
    seq, pos = (targets >= 0).nonzero(as_tuple=True)  # real positions only
    target_col = torch.searchsorted(candidate_rows, targets[seq, pos])  # (P,)
    logits = states[seq, pos] @ candidate_vectors.T - log_pop  # (P, U)
    # In-batch copies of items from the user's own sequence are not negatives.
    own = torch.cat([inputs, targets], dim=1)  # (B, 2T)
    own_cols = torch.where(own >= 0, torch.searchsorted(candidate_rows, own.clamp_min(0)), n)
    user_has = torch.zeros(own.shape[0], n + 1, dtype=torch.bool)
    user_has.scatter_(1, own_cols, True)  # padding lands in the extra column n
    mask = user_has[seq, :n]  # (P, U)
    mask[torch.arange(len(seq)), target_col] = False
    return F.cross_entropy(logits.masked_fill(mask, float("-inf")), target_col)
