"""Interaction windows -> training sequences and evaluation cases (item rows)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

PAD = -1


def group_by_user(users: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """User -> their item rows in the given (time) order."""
    grouped: dict[str, list[int]] = defaultdict(list)
    for user, row in zip(users, rows, strict=True):
        grouped[str(user)].append(int(row))
    return {user: np.asarray(seq, np.int64) for user, seq in grouped.items()}


def training_chunks(sequences: Sequence[np.ndarray], max_len: int) -> list[np.ndarray]:
    """Cut each sequence (>= 2 items) into chunks of at most max_len + 1, newest first."""
    chunks = []
    for seq in sequences:
        end = len(seq)
        while end >= 2:
            start = max(0, end - (max_len + 1))
            chunks.append(seq[start:end])
            if start == 0:
                break
            end = start + 1  # overlap one item: every transition is trained on
    return chunks


def right_align(seqs: Sequence[np.ndarray], length: int) -> torch.Tensor:
    """(B, length) long tensor, sequences right-aligned, PAD on the left."""
    out = np.full((len(seqs), length), PAD, np.int64)
    for i, seq in enumerate(seqs):
        tail = seq[-length:] if length else seq[:0]
        if len(tail):
            out[i, length - len(tail) :] = tail
    return torch.from_numpy(out)


@dataclass(frozen=True)
class TrainBatch:
    inputs: torch.Tensor  # (B, T) rows, PAD left
    targets: torch.Tensor  # (B, T) rows, PAD where no target


def train_batches(
    chunks: Sequence[np.ndarray], batch_size: int, rng: np.random.Generator
) -> Iterator[TrainBatch]:
    order = rng.permutation(len(chunks))
    for lo in range(0, len(order), batch_size):
        batch = [chunks[i] for i in order[lo : lo + batch_size]]
        length = max(len(c) for c in batch) - 1
        yield TrainBatch(
            right_align([c[:-1] for c in batch], length),
            right_align([c[1:] for c in batch], length),
        )


@dataclass(frozen=True)
class EvalCases:
    """One case per user: predict `targets` from `inputs` (newest last)."""

    users: list[str]
    inputs: list[np.ndarray]
    targets: np.ndarray  # (C,) rows
    exclude: list[np.ndarray]  # rows the user interacted with before the target

    def __len__(self) -> int:
        return len(self.users)


def last_item_cases(
    users: np.ndarray,
    rows: np.ndarray,
    *,
    target_mask: np.ndarray,
    n_input: int,
    history: dict[str, set[int]],
    every_target: bool = False,
) -> EvalCases:
    """Each user's last interaction among `target_mask` is the target (or, with
    `every_target`, each one is); the up-to-n_input interactions before it (in
    `rows`' order) are the input; `history` plus those are excluded from ranking
    (never the target itself)."""
    positions: dict[str, list[int]] = defaultdict(list)
    for i, user in enumerate(users):
        positions[str(user)].append(i)
    out_users, inputs, targets, exclude = [], [], [], []
    for user, idx in positions.items():
        marked = [i for i in idx if target_mask[i]]
        for t in marked if every_target else marked[-1:]:
            before = [i for i in idx if i < t]
            if not before:
                continue
            target = int(rows[t])
            seen = history.get(user, set()) | {int(rows[i]) for i in before}
            seen.discard(target)
            out_users.append(user)
            inputs.append(rows[before][-n_input:])
            targets.append(target)
            exclude.append(np.fromiter(seen, np.int64, len(seen)))
    return EvalCases(out_users, inputs, np.asarray(targets, np.int64), exclude)
