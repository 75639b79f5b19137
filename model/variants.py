"""The variants compared by the streaming evaluation, all on the same splits."""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from xsmoe.model.evaluate import ScoreFn, model_scorer, popularity_scorer, rank_cases
from xsmoe.model.item_tower import ItemTable
from xsmoe.model.metrics import KS, METRICS, mean_metrics, metrics_from_ranks
from xsmoe.model.recommender import Recommender, RecommenderConfig
from xsmoe.model.streaming import StreamingProtocol
from xsmoe.model.train import TrainConfig, train_window

log = logging.getLogger(__name__)

MAIN_VARIANTS = ("pop", "sasrec-id", "sasrec-all", "frozen", "xsmoe-fixed", "xsmoe")
ALL_VARIANTS = (*MAIN_VARIANTS, "xsmoe-idres", "full-ft", "content-only")


@dataclass(frozen=True)
class VariantSpec:
    """How a variant is built and trained."""

    experts_per_stage: int | None  # None: not a side-MoE content model
    expand: bool = False
    id_embeddings: bool = False
    trains: bool = True
    # A fresh model at every step, trained on every past window (the costly reference
    # a user would otherwise run), instead of fine-tuning on the newest window only.
    retrain_all: bool = False
    id_residual: bool = False  # content + warm-item ID residual (an option, not a default)
    # never trained: a user is the mean of their items' content vectors (what a catalog
    # with no interactions yet serves first)
    content_only: bool = False
    # the variant whose tuned hyper-parameters this one uses (the same model, trained
    # differently or with an add-on) when it was not tuned itself
    tuned_as: str | None = None


SPECS = {
    "pop": VariantSpec(None, trains=False),
    "sasrec-id": VariantSpec(None, id_embeddings=True),
    "sasrec-all": VariantSpec(None, id_embeddings=True, retrain_all=True, tuned_as="sasrec-id"),
    "frozen": VariantSpec(0),
    "xsmoe-fixed": VariantSpec(1),
    "xsmoe": VariantSpec(1, expand=True),
    "xsmoe-idres": VariantSpec(1, expand=True, id_residual=True, tuned_as="xsmoe"),
    "full-ft": VariantSpec(None),
    "content-only": VariantSpec(0, trains=False, content_only=True),
}


def build_model(
    name: str,
    table: ItemTable,
    base: RecommenderConfig,
    item_tower: Callable[[], nn.Module] | None = None,
) -> Recommender | None:
    spec = SPECS[name]
    if not spec.trains and not spec.content_only:
        return None
    if spec.id_embeddings:
        return Recommender(replace(base, n_item_ids=len(table)))
    if spec.experts_per_stage is None:
        if item_tower is None:
            raise ValueError(f"variant {name} needs an item tower")
        return Recommender(base, item_tower())
    experts = {m: (spec.experts_per_stage,) * (n - 1) for m, (n, _) in base.shapes.items()}
    id_rows = len(table) if spec.id_residual else 0
    return Recommender(
        replace(base, experts=experts, id_residual_rows=id_rows, content_only=spec.content_only)
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_variant(
    name: str,
    protocol: StreamingProtocol,
    table: ItemTable,
    base: RecommenderConfig,
    train_config: TrainConfig,
    *,
    n_test_windows: int | None = None,
    item_tower: Callable[[], nn.Module] | None = None,
    on_window: Callable[[dict[str, Any]], None] | None = None,
    test: bool = True,
) -> dict[str, Any]:
    """Train on window t-1, test on window t, for t = 1..; return the result record.

    `test=False` (hyper-parameter selection) never looks at a test window: only
    the validation tails of the training windows are scored.
    """
    torch.manual_seed(train_config.seed)
    model = build_model(name, table, base, item_tower)
    spec = SPECS[name]
    config = replace(train_config, expand=spec.expand)
    last = protocol.config.n_windows if n_test_windows is None else 1 + n_test_windows
    windows: list[dict[str, Any]] = []
    warm_ranks, cold_ranks = [], []
    for t in range(1, last):
        seconds, experts, epochs, val_ndcg = 0.0, {}, 0, None
        if model is not None and spec.trains:
            if spec.retrain_all:
                torch.manual_seed(train_config.seed + t)
                model = build_model(name, table, base, item_tower)
                assert model is not None
            report = train_window(
                model,
                table,
                protocol.train_sequences_all(t - 1)
                if spec.retrain_all
                else protocol.train_sequences(t - 1),
                protocol.val_cases(t - 1),
                protocol.known_upto(t - 1),
                config,
            )
            seconds, experts, epochs = report.seconds, report.experts, report.epochs
            val_ndcg = round(report.best_val_ndcg, 5)
        if not test:
            windows.append({"window": t, "val_ndcg@10": val_ndcg, "train_seconds": seconds})
            continue
        cases = protocol.test_cases(t)
        score: ScoreFn = (
            popularity_scorer(protocol.window_counts(t - 1).astype(np.float64))
            if model is None
            else model_scorer(model, table)
        )
        ranks = rank_cases(score, cases, protocol.known_upto(t))
        cold = protocol.first_window[cases.targets] == t
        warm_ranks.append(ranks[~cold])
        cold_ranks.append(ranks[cold])
        record = {
            "window": t,
            **mean_metrics(metrics_from_ranks(ranks, KS)),
            "cases": len(cases),
            "cold_cases": int(cold.sum()),
            "train_seconds": round(seconds, 3),
            "epochs": epochs,
            "val_ndcg@10": val_ndcg,  # of the returned model on window t-1's tail
            "experts": {m: list(e) for m, e in experts.items()},
        }
        windows.append(record)
        if on_window is not None:
            on_window(record)
    if not test:
        return {
            "val_ndcg@10": float(np.mean([w["val_ndcg@10"] or 0.0 for w in windows])),
            "windows": windows,
            "train_seconds_per_window": float(np.mean([w["train_seconds"] for w in windows])),
        }
    avg = {k: float(np.mean([w[k] for w in windows])) for k in METRICS}
    cold_all = np.concatenate(cold_ranks) if cold_ranks else np.zeros((0, 2), np.int64)
    cold = mean_metrics(metrics_from_ranks(cold_all, (10,)))
    # warm = targets seen before their test window, pooled over windows like `cold`
    warm_all = np.concatenate(warm_ranks) if warm_ranks else np.zeros((0, 2), np.int64)
    warm = mean_metrics(metrics_from_ranks(warm_all, (10,)))
    trained = [w["train_seconds"] for w in windows if w["epochs"]]
    return {
        "avg": avg,
        "cold": {**cold, "cases": len(cold_all)},
        "warm": {**warm, "cases": len(warm_all)},
        "windows": windows,
        "train_seconds_per_window": float(np.mean(trained)) if trained else 0.0,
        "seconds_per_epoch": (
            float(sum(trained) / max(1, sum(w["epochs"] for w in windows))) if trained else 0.0
        ),
        "trainable_params": model.trainable_parameters()
        if model is not None and spec.trains
        else 0,
        "total_params": model.total_parameters() if model is not None else 0,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "finished_at": time.time(),
    }
