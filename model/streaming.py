"""The offline streaming protocol (method doc §4) over a time-ordered log.

All interactions are sorted by time (stable), cut into windows of equal count,
and filtered per window to users with >= `user_core` interactions. For window t:
train on the first 85% of window t-1 (validation: each user's last interaction
in its last 15%), test on each user's last interaction of window t, with the up
to `n_input` interactions before it (same window) as input. Ranking is over
every item seen up to and including the test window (so items first seen in it,
the cold start case, are candidates); items the user already interacted with
are excluded.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from xsmoe.model.data import Interactions
from xsmoe.model.sequences import EvalCases, group_by_user, last_item_cases


@dataclass(frozen=True)
class ProtocolConfig:
    n_windows: int = 10
    val_fraction: float = 0.15
    user_core: int = 5
    n_input: int = 10
    # Early stopping on every validation interaction, not only each user's last:
    # a window has only ~100-160 users, and one case each makes NDCG@10 too noisy
    # to select an epoch. (Test cases stay one per user.)
    val_every_interaction: bool = True


@dataclass(frozen=True)
class Window:
    users: np.ndarray  # (n,) object, time-ordered
    rows: np.ndarray  # (n,) int64 item rows


class StreamingProtocol:
    def __init__(
        self,
        interactions: Interactions,
        row_of: dict[str, int],
        n_items: int,
        config: ProtocolConfig,
    ) -> None:
        self.config = config
        self.n_items = n_items
        rows = np.fromiter((row_of.get(str(i), -1) for i in interactions.item_ids), np.int64)
        keep = rows >= 0
        users, rows = interactions.user_ids[keep], rows[keep]
        bounds = np.linspace(0, len(rows), config.n_windows + 1).round().astype(int)
        self.raw = [Window(users[a:b], rows[a:b]) for a, b in itertools.pairwise(bounds)]
        self.windows = [self._core(w) for w in self.raw]
        self.first_window = np.full(n_items, -1, np.int64)
        for t in reversed(range(config.n_windows)):
            self.first_window[self.raw[t].rows] = t

    def _core(self, window: Window) -> Window:
        names, counts = np.unique(window.users.astype(str), return_counts=True)
        kept = set(names[counts >= self.config.user_core])
        mask = np.fromiter((str(u) in kept for u in window.users), bool, len(window.users))
        return Window(window.users[mask], window.rows[mask])

    def history_before(self, t: int) -> dict[str, set[int]]:
        history: dict[str, set[int]] = {}
        for window in self.raw[:t]:
            for user, row in zip(window.users, window.rows, strict=True):
                history.setdefault(str(user), set()).add(int(row))
        return history

    def known_upto(self, t: int) -> np.ndarray:
        return (self.first_window >= 0) & (self.first_window <= t)

    def _val_cut(self, t: int) -> int:
        return round(len(self.windows[t].rows) * (1 - self.config.val_fraction))

    def train_sequences(self, t: int) -> list[np.ndarray]:
        w, cut = self.windows[t], self._val_cut(t)
        return list(group_by_user(w.users[:cut], w.rows[:cut]).values())

    def train_sequences_all(self, t: int) -> list[np.ndarray]:
        """Every past window in full plus window t's training part, per user in time order
        (what a model retrained from scratch on all past data trains on)."""
        cut = self._val_cut(t)
        users = np.concatenate([w.users for w in self.windows[:t]] + [self.windows[t].users[:cut]])
        rows = np.concatenate([w.rows for w in self.windows[:t]] + [self.windows[t].rows[:cut]])
        return list(group_by_user(users, rows).values())

    def val_cases(self, t: int) -> EvalCases:
        w = self.windows[t]
        target_mask = np.arange(len(w.rows)) >= self._val_cut(t)
        return last_item_cases(
            w.users,
            w.rows,
            target_mask=target_mask,
            n_input=self.config.n_input,
            history=self.history_before(t),
            every_target=self.config.val_every_interaction,
        )

    def test_cases(self, t: int) -> EvalCases:
        w = self.windows[t]
        return last_item_cases(
            w.users,
            w.rows,
            target_mask=np.ones(len(w.rows), bool),
            n_input=self.config.n_input,
            history=self.history_before(t),
        )

    def window_counts(self, t: int) -> np.ndarray:
        return np.bincount(self.windows[t].rows, minlength=self.n_items)
