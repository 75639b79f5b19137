"""One window of live feedback -> a trained candidate, gated against the serving model.

The same `model/` trainer as the offline evaluation. A window's positive events,
in stream order, are split in time: the first part trains, the next part picks
the epoch (early stopping), the last part (the held-out tail) is what the gate
scores both models on. Each user's earlier items come first as context.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xsmoe.common.events import POSITIVE, FeedbackEvent
from xsmoe.model.evaluate import model_scorer, rank_cases
from xsmoe.model.item_tower import ItemTable
from xsmoe.model.metrics import mean_metrics, metrics_from_ranks
from xsmoe.model.recommender import Recommender
from xsmoe.model.sequences import EvalCases, group_by_user, last_item_cases
from xsmoe.model.train import TrainConfig, WindowReport, train_window
from xsmoe.workers.settings import WorkerOptions

log = logging.getLogger(__name__)

CONTEXT, TRAIN, VALIDATE, GATE = 0, 1, 2, 3


@dataclass
class WindowResult:
    outcome: str  # "promoted" | "rejected" | "skipped"
    reason: str
    candidate: Recommender | None = None
    report: WindowReport | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    online: dict[str, float] = field(default_factory=dict)  # serving model, prequential
    unknown_items: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WindowData:
    users: np.ndarray  # (n,) str: context rows first per user, then the window in order
    rows: np.ndarray  # (n,) item rows
    phase: np.ndarray  # (n,) CONTEXT | TRAIN | VALIDATE | GATE
    # user -> rows they disliked in the window: serving never recommends them to that user
    disliked: dict[str, set[int]] = field(default_factory=dict)

    def cases(self, phases: Sequence[int], upto: int, n_input: int) -> EvalCases:
        """Cases scored as serving scores them: the up-to-`n_input` items before each
        target as the history (the model's own length), every earlier item and the
        user's dislikes excluded."""
        keep = self.phase <= upto
        return last_item_cases(
            self.users[keep],
            self.rows[keep],
            target_mask=np.isin(self.phase[keep], phases),
            n_input=n_input,
            history=self.disliked,
            every_target=True,
        )


def window_data(
    events: Sequence[FeedbackEvent],
    row_of: Mapping[str, int],
    context: Mapping[str, Sequence[str]],
    opts: WorkerOptions,
) -> tuple[WindowData, list[str]]:
    """Arrays for one window's positive events (and the item ids no row was found for)."""
    positive = [e for e in events if e.type in POSITIVE]
    unknown = sorted({e.item_id for e in positive if e.item_id not in row_of})
    positive = [e for e in positive if e.item_id in row_of]
    n = len(positive)
    gate_from = n - round(n * opts.gate_fraction)
    val_from = gate_from - round(n * opts.val_fraction)
    users: list[str] = []
    rows: list[int] = []
    phase: list[int] = []
    for user in dict.fromkeys(e.user_id for e in positive):  # context first, once per user
        for item in context.get(user, ())[-opts.context :] if opts.context else ():
            if item in row_of:
                users.append(user)
                rows.append(row_of[item])
                phase.append(CONTEXT)
    for i, event in enumerate(positive):
        users.append(event.user_id)
        rows.append(row_of[event.item_id])
        phase.append(GATE if i >= gate_from else VALIDATE if i >= val_from else TRAIN)
    disliked: dict[str, set[int]] = {}
    for event in events:
        if event.type not in POSITIVE and event.item_id in row_of:
            disliked.setdefault(event.user_id, set()).add(row_of[event.item_id])
    data = WindowData(
        np.asarray(users, dtype=object),
        np.asarray(rows, np.int64),
        np.asarray(phase, np.int64),
        disliked,
    )
    return data, unknown


def score(model: Recommender, table: ItemTable, cases: EvalCases) -> dict[str, float]:
    """HR@10 / NDCG@10 of a model over cases, every item a candidate (seen ones excluded)."""
    if not len(cases):
        return {"hr@10": float("nan"), "ndcg@10": float("nan"), "cases": 0}
    ranks = rank_cases(model_scorer(model, table), cases, np.ones(len(table), bool))
    metrics = mean_metrics(metrics_from_ranks(ranks, (10,)))
    return {"hr@10": metrics["hr@10"], "ndcg@10": metrics["ndcg@10"], "cases": len(cases)}


def train_and_gate(
    serving: Recommender,
    table: ItemTable,
    data: WindowData,
    opts: WorkerOptions,
    seed: int = 0,
    cancel: Callable[[], bool] | None = None,
) -> WindowResult:
    """Fine-tune a copy of the serving model on the window (on `opts.device`); promote it
    if it holds up. The candidate comes back on the CPU, as the serving model is."""
    n_input = serving.config.user.max_len  # what serving reads of a history
    online = score(serving, table, data.cases((TRAIN, VALIDATE, GATE), GATE, n_input))
    train_seqs = list(
        group_by_user(data.users[data.phase <= TRAIN], data.rows[data.phase <= TRAIN]).values()
    )
    val_cases = data.cases((VALIDATE,), VALIDATE, n_input)
    gate_cases = data.cases((GATE,), GATE, n_input)
    if not any(len(s) >= 2 for s in train_seqs) or not len(val_cases) or not len(gate_cases):
        reason = (
            f"too little to learn from: {sum(len(s) >= 2 for s in train_seqs)} training users, "
            f"{len(val_cases)} validation and {len(gate_cases)} held-out cases"
        )
        return WindowResult("skipped", reason, online=online)
    candidate = copy.deepcopy(serving)
    config = TrainConfig(
        lr=opts.lr, max_epochs=opts.max_epochs, loss=opts.loss, seed=seed, device=opts.device
    )
    report = train_window(
        candidate, table, train_seqs, val_cases, np.ones(len(table), bool), config, cancel=cancel
    )
    candidate.eval()
    new, old = score(candidate, table, gate_cases), score(serving, table, gate_cases)
    promoted = new["ndcg@10"] >= old["ndcg@10"] - opts.epsilon
    metrics = {
        "gate": {"candidate": new, "serving": old, "epsilon": opts.epsilon},
        "val_ndcg@10": report.best_val_ndcg,
        "epochs": report.epochs,
        "train_seconds": round(report.seconds, 2),
    }
    verdict = ">=" if promoted else "<"
    reason = (
        f"held-out NDCG@10 {new['ndcg@10']:.4f} {verdict} serving {old['ndcg@10']:.4f} "
        f"- {opts.epsilon} over {new['cases']} cases"
    )
    outcome = "promoted" if promoted else "rejected"
    return WindowResult(outcome, reason, candidate, report, metrics, online)
