from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from xsmoe.model.loss import softmax_loss
from xsmoe.model.metrics import mean_metrics, metrics_from_ranks, target_ranks


def test_ranks_and_metrics_match_a_hand_computed_example() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.8, 0.1], [0.4, 0.3, 0.2, 0.1]])
    ranks = target_ranks(scores, torch.tensor([2, 2, 3])).numpy()
    assert ranks.tolist() == [[1, 0], [0, 1], [3, 0]]  # (higher, ties)
    m = mean_metrics(metrics_from_ranks(ranks, ks=(1, 2)))
    # The tie puts case 2 at rank 0 or 1 with equal chance: expected HR@1 = 1/2.
    assert m["hr@1"] == 0.5 / 3 and m["hr@2"] == 2 / 3
    case2 = (1.0 + 1 / math.log2(3)) / 2
    assert math.isclose(m["ndcg@2"], (1 / math.log2(3) + case2) / 3)
    per = metrics_from_ranks(np.array([0, 9, 10]), ks=(10,))  # exact ranks
    assert per["hr@10"].tolist() == [1.0, 1.0, 0.0]
    assert math.isclose(per["ndcg@10"][1], 1 / math.log2(11))


def test_a_tie_across_the_cutoff_counts_in_expectation() -> None:
    # 9 items above, target tied with 3 others: ranks 9..12, one of 4 inside the top 10.
    per = metrics_from_ranks(np.array([[9, 3]]), ks=(10,))
    assert per["hr@10"][0] == 0.25
    assert math.isclose(per["ndcg@10"][0], 0.25 / math.log2(11))


def test_inbatch_loss_masks_own_items_and_applies_logq() -> None:
    candidates = torch.tensor([3, 5, 7, 9])
    vectors = torch.eye(4)
    states = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])  # one user, one position
    targets = torch.tensor([[5]])
    inputs = torch.tensor([[7]])  # the user's own item 7 is not a negative
    log_pop = torch.tensor([0.0, 0.5, 0.0, 1.0])
    loss = softmax_loss(states, targets, inputs, candidates, vectors, log_pop)
    logits = torch.tensor([1.0, 2.0 - 0.5, 4.0 - 1.0])  # columns 3, 5, 9
    torch.testing.assert_close(loss, F.cross_entropy(logits[None], torch.tensor([1])))


def test_inbatch_loss_ignores_padding_positions() -> None:
    candidates = torch.tensor([1, 2])
    vectors = torch.eye(2)
    states = torch.tensor([[[5.0, 0.0], [0.0, 1.0]]])
    targets = torch.tensor([[-1, 2]])
    inputs = torch.tensor([[-1, 1]])
    loss = softmax_loss(states, targets, inputs, candidates, vectors, torch.zeros(2))
    assert loss.item() == 0.0  # item 1 is the user's own: the only candidate left is 2


def test_full_softmax_matches_hand_computed_cross_entropy() -> None:
    # Every known item is a candidate; no logQ. Two users, two positions each.
    torch.manual_seed(0)
    rows = torch.tensor([0, 2, 3, 5, 8])  # the known items (sorted rows)
    vectors = torch.randn(5, 3)
    states = torch.randn(2, 2, 3)
    inputs = torch.tensor([[-1, 0], [2, 3]])
    targets = torch.tensor([[-1, 5], [3, 8]])
    loss = softmax_loss(states, targets, inputs, rows, vectors)
    terms = []
    col = {int(r): i for i, r in enumerate(rows)}
    for b, t in ((0, 1), (1, 0), (1, 1)):
        logits = vectors @ states[b, t]
        own = {int(x) for x in torch.cat([inputs[b], targets[b]]) if x >= 0}
        keep = [i for i, r in enumerate(rows.tolist()) if r not in own or r == targets[b, t]]
        target = keep.index(col[int(targets[b, t])])
        terms.append(-torch.log_softmax(logits[keep], 0)[target])
    torch.testing.assert_close(loss, torch.stack(terms).mean())
