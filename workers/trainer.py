"""One window of live feedback -> a trained candidate, gated against the serving model.

The same `model/` trainer as the offline evaluation. A window's positive events,
in stream order, are split in time: the first part trains, the next part picks
the epoch (early stopping), the last part (the held-out tail) is what the gate
scores both models on. Each user's earlier items come first as context.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from xsmoe.common.events import POSITIVE, FeedbackEvent
from xsmoe.model.evaluate import embedding_scorer, query_vectors, rank_cases, sample_cases
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
    # (N, d) float32 candidate item embeddings in store row order, computed for the gate
    item_vectors: np.ndarray | None = None
    # (Q, d) float32 candidate user vectors of the gate cases' histories (Q <= ~1,000)
    query_vectors: np.ndarray | None = None


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


def score(model: Recommender, items: torch.Tensor, cases: EvalCases) -> dict[str, float]:
    """HR@10 / NDCG@10 of a model over cases, every item a candidate (seen ones excluded),
    against the model's embeddings of every item (`items`, computed once per window)."""
    if not len(cases):
        return {"hr@10": float("nan"), "ndcg@10": float("nan"), "cases": 0}
    ranks = rank_cases(embedding_scorer(model, items), cases, np.ones(len(items), bool))
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
    if it holds up. The candidate comes back on the CPU, as the serving model is.

    Each model embeds the catalog once: serving's embeddings score its prequential
    `online` metric and its side of the gate; the candidate's its side of the gate and
    come back as `item_vectors` (what its snapshot serves)."""
    n_input = serving.config.user.max_len  # what serving reads of a history
    rng = np.random.default_rng(seed)
    every = data.cases((TRAIN, VALIDATE, GATE), GATE, n_input)
    # On a catalog past val_sample items, ranking every case of the window against all
    # of them is most of the window's time (10,000 cases x 1M items): a uniform sample
    # of the cases estimates the same metric.
    large = len(table) > opts.val_sample
    online_cases = sample_cases(every, opts.online_cases, rng) if large else every
    clock = time.perf_counter()
    serving_items = serving.item_embeddings(table)
    seconds = {"serving_embeddings": time.perf_counter() - clock}
    clock = time.perf_counter()
    online = score(serving, serving_items, online_cases)
    seconds["online"] = time.perf_counter() - clock
    if len(online_cases) < len(every):
        online["of_cases"] = len(every)
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
        lr=opts.lr,
        max_epochs=opts.max_epochs,
        loss=opts.loss,
        seed=seed,
        device=opts.device,
        val_sample=opts.val_sample,
    )
    report = train_window(
        candidate, table, train_seqs, val_cases, np.ones(len(table), bool), config, cancel=cancel
    )
    candidate.eval()
    clock = time.perf_counter()
    candidate_items = candidate.item_embeddings(table)
    seconds["candidate_embeddings"] = time.perf_counter() - clock
    clock = time.perf_counter()
    new = score(candidate, candidate_items, gate_cases)
    old = score(serving, serving_items, gate_cases)
    seconds["gate"] = time.perf_counter() - clock
    del serving_items  # before the snapshot is written
    promoted = new["ndcg@10"] >= old["ndcg@10"] - opts.epsilon
    metrics = {
        "gate": {"candidate": new, "serving": old, "epsilon": opts.epsilon},
        "val_ndcg@10": report.best_val_ndcg,
        "val_items": report.val_items,
        "epochs": report.epochs,
        "train_seconds": round(report.seconds, 2),
        # where a window's time goes besides training (each catalog pass, each ranking)
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
    }
    verdict = ">=" if promoted else "<"
    reason = (
        f"held-out NDCG@10 {new['ndcg@10']:.4f} {verdict} serving {old['ndcg@10']:.4f} "
        f"- {opts.epsilon} over {new['cases']} cases"
    )
    outcome = "promoted" if promoted else "rejected"
    return WindowResult(
        outcome,
        reason,
        candidate,
        report,
        metrics,
        online,
        item_vectors=np.ascontiguousarray(candidate_items.float().cpu().numpy()),
        query_vectors=query_vectors(candidate, candidate_items, gate_cases),
    )
