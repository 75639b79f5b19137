"""Softmax cross-entropy at every position, over a chosen set of candidate items.

Two ways to choose the candidates, one function:
- full softmax: every item known at training time (exact; cost grows with the
  catalog, so it is used below a size limit);
- in-batch (sampled) softmax: the items present in the batch, with the logQ
  correction (`log_q` = log popularity) for their sampling frequency.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def softmax_loss(
    states: torch.Tensor,  # (B, T, d) user state per position
    targets: torch.Tensor,  # (B, T) item rows, < 0 where no target
    inputs: torch.Tensor,  # (B, T) item rows, < 0 for padding
    candidate_rows: torch.Tensor,  # (U,) sorted unique rows; every input and target is one
    candidate_vectors: torch.Tensor,  # (U, d)
    log_q: torch.Tensor | None = None,  # (U,) log sampling probability (logQ), in-batch only
) -> torch.Tensor:
    """Mean CE over real positions; a user's own other items are not negatives.

    The evaluation and serving never recommend an item the user already has, so
    the loss does not spend capacity pushing those down.
    """
    n = len(candidate_rows)
    seq, pos = (targets >= 0).nonzero(as_tuple=True)  # real positions only
    target_col = torch.searchsorted(candidate_rows, targets[seq, pos])  # (P,)
    logits = states[seq, pos] @ candidate_vectors.T  # (P, U)
    if log_q is not None:
        logits = logits - log_q
    own = torch.cat([inputs, targets], dim=1)  # (B, 2T)
    own_cols = torch.where(own >= 0, torch.searchsorted(candidate_rows, own.clamp_min(0)), n)
    user_has = torch.zeros(own.shape[0], n + 1, dtype=torch.bool, device=states.device)
    user_has.scatter_(1, own_cols, True)  # padding lands in the extra column n
    mask = user_has[seq, :n]  # (P, U)
    mask[torch.arange(len(seq), device=states.device), target_col] = False
    return F.cross_entropy(logits.masked_fill(mask, float("-inf")), target_col)
