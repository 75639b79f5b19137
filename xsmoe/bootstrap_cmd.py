"""`xsmoe bootstrap`: train on the first windows and publish the first snapshot."""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from xsmoe import pipeline
from xsmoe.cli_args import Parser, UsageError, positive_int
from xsmoe.common.settings import Settings
from xsmoe.common.snapshot_store import LocalStore, next_version, open_store
from xsmoe.model.device import DEVICES, DeviceUnavailable, resolve_device
from xsmoe.model.evaluate import query_vectors
from xsmoe.model.recommender import Recommender
from xsmoe.model.sequences import EvalCases
from xsmoe.model.snapshot import save_snapshot
from xsmoe.model.streaming import ProtocolConfig
from xsmoe.model.train import TrainConfig, WindowReport, train_window

log = logging.getLogger(__name__)


def register(cmd: Parser) -> None:
    cmd.description = (
        "Writes SNAPSHOT_DIR/v000001 (or the next version), publishes it to the "
        "snapshot store (XSMOE_SNAPSHOT_STORE) and points the store's pointer at it."
    )
    pipeline.add_dataset_options(cmd)
    cmd.add_argument(
        "--out", type=Path, help="a local store instead (default XSMOE_SNAPSHOT_STORE)"
    )
    cmd.add_argument(
        "--windows", type=positive_int, default=10, help="time windows the log is cut into"
    )
    cmd.add_argument(
        "--train-windows",
        type=positive_int,
        help="how many first windows to train (default: 5 of ml-100k, so the later half can be "
        "replayed; all of your own interactions)",
    )
    cmd.add_argument("--max-epochs", type=positive_int, default=30, help="per window")
    cmd.add_argument("--seed", type=int, default=0, help="training seed")
    cmd.add_argument("--device", default="auto", help=f"training device: {', '.join(DEVICES)}")
    cmd.add_argument(
        "--id-residual",
        action="store_true",
        help="add a warm-item ID residual to the content vectors (zero for items never "
        "trained on; see docs/results-ml-100k.md)",
    )
    cmd.add_argument(
        "--if-missing", action="store_true", help="do nothing if a current snapshot exists"
    )
    cmd.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.train_windows is None:
        args.train_windows = args.windows if args.catalog else min(5, args.windows)
    if not 1 <= args.train_windows <= args.windows:
        raise UsageError("--train-windows must be within 1..--windows")
    try:
        device = str(resolve_device(args.device))
    except DeviceUnavailable as exc:
        raise UsageError(f"--device: {exc}") from None
    out: Path = args.out or settings.snapshots  # written here, then published
    snapshots = LocalStore(out) if args.out else open_store(settings)
    current = snapshots.pointer() if args.if_missing else None
    if current is not None:
        print(f"snapshot {current} is current in {snapshots.url}: nothing to do")  # noqa: T201
        return 0
    dataset = pipeline.dataset_from_args(args)
    store, _ = pipeline.ensure_features(settings, dataset.name, dataset.items)
    table = pipeline.content_table(store)
    base = pipeline.base_config(table)
    if args.id_residual:
        base = replace(base, id_residual_rows=len(table))
    model = Recommender(base)
    reports: list[WindowReport] = []
    n_trained = 0
    val_cases: EvalCases | None = None  # the last trained window's: real index queries
    if len(dataset.interactions) >= 2 * args.windows:
        # Your own log trains on every user with a transition to learn; the built-in
        # dataset keeps the evaluation's 5-interaction core, so both read the same windows.
        core = 2 if args.catalog else ProtocolConfig.user_core
        protocol = pipeline.streaming_protocol(
            dataset, store, ProtocolConfig(n_windows=args.windows, user_core=core)
        )
        config = TrainConfig(max_epochs=args.max_epochs, seed=args.seed, device=device)
        for t in tqdm(
            range(args.train_windows), desc="training windows", unit="window", file=sys.stderr
        ):
            sequences = protocol.train_sequences(t)
            if not any(len(s) >= 2 for s in sequences):
                log.warning("window %d: no user has two interactions in it; skipped", t)
                continue
            val_cases = protocol.val_cases(t)
            reports.append(
                train_window(model, table, sequences, val_cases, protocol.known_upto(t), config)
            )
        n_trained = sum(len(w.rows) for w in protocol.raw[: args.train_windows])
    if not reports:
        # No interactions yet (or none to learn from): serve similar content and, once
        # feedback arrives, popular items; the worker trains from its first window.
        log.warning(
            "%d interactions: nothing to train on; writing a content-only first snapshot",
            len(dataset.interactions),
        )
        model = Recommender(replace(base, content_only=True))
        n_trained = len(dataset.interactions)
        val_cases = None
    items = model.item_embeddings(table)
    embeddings = items.numpy()
    queries = query_vectors(model, items, val_cases) if val_cases is not None else None
    seen = Counter(dataset.interactions.item_ids[:n_trained].tolist())
    source: dict[str, Any] = {
        "dataset": dataset.name,
        "windows": args.windows,
        "trained_windows": len(reports),
        "trained_interactions": n_trained,
    }
    if n_trained:
        source["trained_through_ts"] = float(dataset.interactions.timestamps[n_trained - 1])
    val = reports[-1].best_val_ndcg if reports else None
    path = save_snapshot(
        out,
        model,
        list(store.item_ids),
        embeddings,
        {m: store.specs[m] for m in table.features},
        metrics={"val_ndcg@10": val} if val is not None else {},
        version=next_version(out, snapshots),
        queries=queries,
        index=settings.index.to_options(),
        extra={
            "source": source,
            "popular": [item for item, _ in seen.most_common(1000)],
            "utilization": reports[-1].utilization if reports else {},
            "windows": [
                {"epochs": r.epochs, "val_ndcg@10": r.best_val_ndcg, "seconds": round(r.seconds, 2)}
                for r in reports
            ],
        },
    )
    snapshots.publish(path)  # the files first, the pointer last
    experts = model.current_config().experts
    quality = f"val NDCG@10 {val:.4f}" if val is not None else "content-only (not trained yet)"
    print(  # noqa: T201 - the CLI's own output
        f"snapshot {path.name} written to {out}, published to {snapshots.url} and made "
        f"current: {len(store)} items, "
        f"experts per stage {experts}, {quality}"
    )
    return 0
