"""`xsmoe eval`: the offline streaming evaluation of every variant on the same splits."""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from common.logs import setup_logging
from common.settings import Settings
from model.encoders import resolve_model_dir
from model.streaming import ProtocolConfig
from model.train import TrainConfig
from model.variants import ALL_VARIANTS, MAIN_VARIANTS, SPECS, run_variant
from xsmoe import pipeline, report

log = logging.getLogger(__name__)


def register(commands: Any) -> None:
    cmd = commands.add_parser(
        "eval",
        help="streaming evaluation of the variants (HR/NDCG@10,20) on one dataset",
        description="Train on window t-1, test on window t, for every variant on the same splits.",
    )
    cmd.add_argument("--dataset", choices=pipeline.DATASETS, default="ml-100k")
    cmd.add_argument(
        "--variants",
        default=",".join(MAIN_VARIANTS),
        help=f"comma-separated, from {', '.join(ALL_VARIANTS)}",
    )
    cmd.add_argument("--out", type=Path, default=Path("var/eval"))
    cmd.add_argument("--windows", type=int, default=10, help="number of time windows")
    cmd.add_argument(
        "--user-core", type=int, default=5, help="min interactions per user per window"
    )
    cmd.add_argument(
        "--max-epochs", type=int, default=30, help="per window (ref. 100; 30 fits 2 cores)"
    )
    cmd.add_argument("--lr", type=float, default=TrainConfig.lr, help="Adam learning rate")
    cmd.add_argument("--max-experts", type=int, default=8, help="cap on experts per stage (xsmoe)")
    cmd.add_argument(
        "--seeds",
        default="0",
        help="comma-separated training seeds; trained variants run once per seed and "
        "report the mean (and the spread across seeds)",
    )
    cmd.add_argument("--full-ft-windows", type=int, default=2, help="test windows for full-ft")
    cmd.add_argument("--full-ft-layers", type=int, default=2, help="top text layers full-ft trains")
    cmd.set_defaults(handler=run)


def _child(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one variant in a fresh process, so its peak memory is its own."""
    settings = Settings(**payload["settings"])
    setup_logging("WARNING")
    import torch

    torch.manual_seed(payload["train"]["seed"])
    dataset = pipeline.load_dataset(payload["dataset"])
    store = pipeline.open_features(settings, dataset.name)
    table = pipeline.content_table(store)
    base = pipeline.base_config(table, max_experts=payload["max_experts"])
    protocol = pipeline.streaming_protocol(dataset, store, ProtocolConfig(**payload["protocol"]))
    name = payload["variant"]
    n_test = payload["full_ft_windows"] if name == "full-ft" else None
    tower = None
    if name == "full-ft":
        from model.full_ft import FullFineTuneTower

        texts = {item.item_id: item.text for item in dataset.items}
        text_config = settings.text.to_config()

        def tower() -> torch.nn.Module:
            return FullFineTuneTower(
                resolve_model_dir(text_config, settings.cache_dir),
                [texts.get(i) for i in store.item_ids],
                payload["full_ft_layers"],
                text_config.max_tokens,
                base.embed_dim,
            )

    total = n_test or protocol.config.n_windows - 1
    with tqdm(total=total, desc=f"{name:>11}", unit="window", file=sys.stderr) as bar:

        def on_window(record: dict[str, Any]) -> None:
            bar.set_postfix(ndcg10=f"{record['ndcg@10']:.4f}", s=record["train_seconds"])
            bar.update(1)

        return run_variant(
            name,
            protocol,
            table,
            base,
            TrainConfig(**payload["train"]),
            n_test_windows=n_test,
            item_tower=tower,
            on_window=on_window,
        )


def run(args: argparse.Namespace, settings: Settings) -> int:
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(ALL_VARIANTS))
    if unknown or not variants:
        raise SystemExit(
            f"error: --variants: unknown {unknown}; choose from {', '.join(ALL_VARIANTS)}"
        )
    if args.windows < 3 or args.user_core < 2 or args.max_epochs < 1:
        raise SystemExit("error: need --windows >= 3, --user-core >= 2, --max-epochs >= 1")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(
            f"error: --seeds: integers separated by commas, got {args.seeds!r}"
        ) from None
    if not seeds:
        raise SystemExit("error: --seeds: give at least one seed")
    dataset = pipeline.load_dataset(args.dataset)
    pipeline.ensure_features(settings, dataset.name, dataset.items)  # the children only read it
    protocol = ProtocolConfig(n_windows=args.windows, user_core=args.user_core)
    if args.lr <= 0 or args.max_experts < 1:
        raise SystemExit("error: need --lr > 0 and --max-experts >= 1")
    train = replace(TrainConfig(), max_epochs=args.max_epochs, lr=args.lr)
    payload_base = {
        "settings": settings.model_dump(mode="json"),
        "dataset": args.dataset,
        "protocol": asdict(protocol),
        "train": asdict(train),
        "full_ft_windows": args.full_ft_windows,
        "full_ft_layers": args.full_ft_layers,
        "max_experts": args.max_experts,
    }
    results: dict[str, Any] = {}
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    for name in variants:
        runs = []
        for seed in seeds if SPECS[name].trains else seeds[:1]:
            payload = {
                **payload_base,
                "variant": name,
                "train": {**payload_base["train"], "seed": seed},
            }
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                runs.append(pool.submit(_child, payload).result())
        results[name] = report.combine_seeds(runs, seeds if SPECS[name].trains else seeds[:1])
        log.info("variant %s: %s", name, results[name]["avg"])
    document = {
        "dataset": args.dataset,
        "protocol": asdict(protocol),
        "train": asdict(train),
        "seeds": seeds,
        "max_experts": args.max_experts,
        "seconds": round(time.perf_counter() - started, 1),
        "variants": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(document, indent=2))
    table = report.markdown(document)
    (args.out / "results.md").write_text(table)
    report.plot(document, args.out / "results.png")
    print(table)  # noqa: T201 - the CLI's own output
    print(f"wrote {args.out}/results.json, results.md, results.png")  # noqa: T201
    return 0
