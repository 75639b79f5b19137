"""One training window: grow (XSMoE), fine-tune, early-stop on validation NDCG@10,
restore the best weights (a real copy). The same code path runs in the offline
evaluation, the bootstrap and the online worker.

Growth happens at the START of a window, before training: prune the least-used
expert per stage (utilization measured while the model trained on the previous
window), then add one expert per stage. So the model a window returns is
exactly the model it validated; what is gated, published and tested is what
was trained.

`TrainConfig.device` is where a window is computed: the model, the item table and
every batch go there for the window, and the model comes back to where it was
(in the dtype it came in), so callers keep a CPU model they can snapshot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

import numpy as np
import torch

from xsmoe.model.device import check_device_name, placement, resolve_device
from xsmoe.model.evaluate import model_scorer, rank_cases, sampled_ranks, sampled_rows
from xsmoe.model.item_tower import ItemTable
from xsmoe.model.loss import softmax_loss
from xsmoe.model.metrics import mean_metrics, metrics_from_ranks
from xsmoe.model.recommender import Recommender
from xsmoe.model.sequences import EvalCases, TrainBatch, train_batches, training_chunks

log = logging.getLogger(__name__)


class TrainingCancelled(Exception):
    """The caller asked training to stop (e.g. the process is shutting down)."""


Loss = Literal["full", "inbatch"]
LOSSES: tuple[str, ...] = get_args(Loss)


@dataclass(frozen=True)
class TrainConfig:
    # Chosen on the validation tails of MovieLens-100k (docs/results-ml-100k.md).
    lr: float = 1e-3
    lr_decay: float = 0.95  # per epoch
    lr_min: float = 1e-4
    batch_size: int = 64  # sequences
    max_epochs: int = 30
    patience: int = 5
    warmup_epochs: int = 5
    prune_tau: float = 0.1
    expand: bool = True  # XSMoE: prune then expand before training (not on a fresh model)
    # "full": softmax over every known item; "inbatch": the batch's items with logQ.
    # Above `full_max_items` known items the full softmax falls back to in-batch.
    loss: Loss = "full"
    full_max_items: int = 20_000
    # Early stopping ranks each validation target against the cases' own items plus
    # this many other known items drawn once per window; at most this many known
    # items: against all of them, exactly (the result is the same).
    val_sample: int = 10_000
    seed: int = 0
    device: str = "cpu"  # auto | cpu | cuda | cuda:N (see model.device)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        check_device_name(self.device)
        if self.val_sample < 1:
            raise ValueError(f"val_sample must be >= 1, got {self.val_sample}")


@dataclass
class WindowReport:
    epochs: int
    best_epoch: int
    best_val_ndcg: float
    seconds: float
    experts: dict[str, tuple[int, ...]]
    pruned: dict[str, list[int | None]] = field(default_factory=dict)
    train_cases: int = 0
    loss: str = "full"
    val_items: int = 0  # items each validation target was ranked against (sampled or all)
    # modality -> per stage -> share of routed output per slot (backbone first), measured
    # over this window's training passes (what the next window's prune reads)
    utilization: dict[str, list[list[float]]] = field(default_factory=dict)


def _log_popularity(sequences: list[np.ndarray], n_items: int) -> torch.Tensor:
    counts = np.bincount(np.concatenate(sequences), minlength=n_items).astype(np.float64) + 1.0
    return torch.from_numpy(np.log(counts / counts.sum()))  # float64: cast where it is used


def _step(
    model: Recommender,
    table: ItemTable,
    batch: TrainBatch,
    log_pop: torch.Tensor,
    known_rows: torch.Tensor | None,
) -> torch.Tensor:
    device = placement(model)[0]  # the window's device (a small table was moved there too)
    batch = TrainBatch(batch.inputs.to(device), batch.targets.to(device))
    present = torch.cat([batch.inputs.flatten(), batch.targets.flatten()])
    in_batch = torch.unique(present[present >= 0])  # sorted
    # Full softmax: every known item is a candidate (plus the batch's, to be safe).
    candidates = in_batch if known_rows is None else torch.unique(torch.cat([known_rows, in_batch]))
    vectors = model.encode_items(table.take(candidates))  # (U, d)
    lookup = torch.searchsorted(candidates, batch.inputs.clamp_min(0))
    valid = batch.inputs >= 0
    history = vectors[lookup] * valid.unsqueeze(-1)
    states = model.user_states(history, valid)
    log_q = log_pop[candidates] if known_rows is None else None
    return softmax_loss(states, batch.targets, batch.inputs, candidates, vectors, log_q)


def validation_ndcg(
    model: Recommender,
    table: ItemTable,
    cases: EvalCases,
    known: np.ndarray,
    rows: np.ndarray | None = None,
) -> float:
    """NDCG@10 of the cases over every known item, or over `rows` only (sampled_rows)."""
    if rows is None:
        ranks = rank_cases(model_scorer(model, table), cases, known)
    else:
        ranks = sampled_ranks(model, table, cases, known, rows)
    return mean_metrics(metrics_from_ranks(ranks, (10,)))["ndcg@10"]


def train_window(
    model: Recommender,
    table: ItemTable,
    sequences: list[np.ndarray],
    val_cases: EvalCases,
    known: np.ndarray,
    config: TrainConfig,
    *,
    on_epoch: Callable[[int, float, float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> WindowReport:
    """Train on one window's user sequences (item rows, time-ordered) on
    `config.device`; the model is returned where it was. `cancel` is asked after
    every batch: True stops at once with TrainingCancelled (the model is then
    half-trained and must be thrown away)."""
    device = resolve_device(config.device)  # before any work: a missing GPU fails fast
    home = placement(model)[0]
    model.to(device)
    try:
        return _train_window(model, table, sequences, val_cases, known, config, on_epoch, cancel)
    finally:
        model.to(home)


def _train_window(
    model: Recommender,
    table: ItemTable,
    sequences: list[np.ndarray],
    val_cases: EvalCases,
    known: np.ndarray,
    config: TrainConfig,
    on_epoch: Callable[[int, float, float], None] | None,
    cancel: Callable[[], bool] | None,
) -> WindowReport:
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    chunks = training_chunks([s for s in sequences if len(s) >= 2], model.config.user.max_len)
    if not chunks:
        raise ValueError("no user in this window has two interactions to learn from")
    if model.config.content_only:  # from here on the user encoder is trained and used
        model.config = replace(model.config, content_only=False)
    grow = config.expand and model.config.trained_windows > 0
    pruned = model.prune_and_expand(config.prune_tau) if grow else {}
    model.reset_utilization()  # the next window's prune reads this window's usage only
    device, dtype = placement(model)
    table = table.to(device, dtype)
    # logQ at least float32: a bfloat16 log-probability is off by up to 0.03
    log_pop = _log_popularity(chunks, len(table))
    log_pop = log_pop.to(device=device, dtype=torch.promote_types(dtype, torch.float32))
    n_known = int(known.sum())
    full = config.loss == "full" and n_known <= config.full_max_items
    known_rows = torch.from_numpy(np.flatnonzero(known)).to(device) if full else None
    # drawn once, from its own generator: every epoch is ranked against the same items,
    # and the training batches' order is the same as without sampling
    val_rows = sampled_rows(val_cases, known, config.val_sample, np.random.default_rng(config.seed))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)  # rebuilt every window
    best_ndcg, best_epoch, best_state = -1.0, 0, None
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        losses = []
        for batch in train_batches(chunks, config.batch_size, rng):
            if cancel is not None and cancel():
                raise TrainingCancelled(f"cancelled in epoch {epoch}")
            loss = _step(model, table, batch, log_pop, known_rows)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        for group in optimizer.param_groups:
            group["lr"] = max(config.lr_min, group["lr"] * config.lr_decay)
        ndcg = (
            validation_ndcg(model, table, val_cases, known, val_rows)
            if len(val_cases)
            else -float(np.mean(losses))
        )
        if on_epoch is not None:
            on_epoch(epoch, float(np.mean(losses)), ndcg)
        if ndcg > best_ndcg:
            best_ndcg, best_epoch = ndcg, epoch
            # buffers included: the restored model keeps the utilization counted so far
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch >= config.warmup_epochs and epoch - best_epoch >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.mark_trained()
    report = WindowReport(
        epochs=epoch,
        best_epoch=best_epoch,
        best_val_ndcg=best_ndcg,
        seconds=time.perf_counter() - start,
        experts=model.current_config().experts,
        pruned=pruned,
        train_cases=len(chunks),
        loss="full" if full else "inbatch",
        val_items=n_known if val_rows is None else len(val_rows),
        utilization=model.utilization(),
    )
    log.info(
        "window trained: %d epochs (best %d, val NDCG@10 %.4f, %s softmax) in %.1f s on %s; "
        "experts %s",
        report.epochs,
        report.best_epoch,
        best_ndcg,
        report.loss,
        report.seconds,
        device,
        report.experts,
    )
    return report
