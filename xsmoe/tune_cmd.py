"""`xsmoe tune`: choose hyper-parameters on the validation tails only.

Every combination of the grid is trained through the streaming protocol, but
only the validation tail of each training window is scored (mean over windows
of the early-stopping NDCG@10); no test window is ranked. Each variant gets
the same grid, so baselines get the same tuning budget as our model.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from xsmoe import eval_jobs, pipeline
from xsmoe.cli_args import Parser, UsageError, positive_int
from xsmoe.common.settings import Settings
from xsmoe.eval_cmd import add_training_options, modalities, train_config
from xsmoe.model.streaming import ProtocolConfig
from xsmoe.model.train import LOSSES
from xsmoe.model.variants import ALL_VARIANTS, SPECS

log = logging.getLogger(__name__)

# grid key -> how to read one value
GRID_KEYS: dict[str, type] = {
    "lr": float,
    "loss": str,
    "dropout": float,
    "max_len": int,
    "batch_size": int,
    "max_epochs": int,
}


def register(cmd: Parser) -> None:
    cmd.description = __doc__
    pipeline.add_dataset_options(cmd)
    cmd.add_argument(
        "--variants", default="sasrec-id,frozen,xsmoe-fixed,xsmoe", help="comma-separated"
    )
    cmd.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help=f"values to try, repeatable; keys: {', '.join(GRID_KEYS)}",
    )
    cmd.add_argument("--windows", type=positive_int, default=10, help="time windows")
    cmd.add_argument("--seed", type=int, default=0, help="training seed")
    cmd.add_argument("--max-experts", type=positive_int, default=8, help="cap per stage")
    cmd.add_argument(
        "--jobs", type=positive_int, default=1, help="runs side by side (1 torch thread each)"
    )
    cmd.add_argument("--out", type=Path, default=Path("var/tune"), help="results folder")
    add_training_options(cmd)
    cmd.set_defaults(handler=run)


def parse_grid(specs: list[str]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in GRID_KEYS or not values.strip():
            raise UsageError(f"--grid {spec!r}: expected KEY=V1,V2 with KEY in {list(GRID_KEYS)}")
        try:
            parsed = [GRID_KEYS[key](v.strip()) for v in values.split(",") if v.strip()]
        except ValueError:
            raise UsageError(f"--grid {spec!r}: values must be {GRID_KEYS[key].__name__}") from None
        if key == "loss" and not set(parsed) <= set(LOSSES):
            raise UsageError(f"--grid loss: choose from {LOSSES}")
        grid[key] = parsed
    return grid


def run(args: argparse.Namespace, settings: Settings) -> int:
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in ALL_VARIANTS or not SPECS[v].trains or v == "full-ft"]
    if bad or not variants:
        raise UsageError(f"--variants: {bad} cannot be tuned; trained variants only")
    grid = parse_grid(args.grid)
    base = train_config(args)
    source = pipeline.dataset_source(args)
    dataset = pipeline.load_source(source)
    pipeline.ensure_features(settings, dataset.name, dataset.items)
    protocol = ProtocolConfig(n_windows=args.windows)
    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    jobs, labels = [], []
    for name in variants:
        for combo in combos:
            jobs.append(
                eval_jobs.payload(
                    settings,
                    source,
                    name,
                    protocol,
                    replace(base, seed=args.seed),
                    max_experts=args.max_experts,
                    dropout=args.dropout,
                    max_len=args.max_len,
                    setting=combo,
                    test=False,
                    modalities=modalities(args),
                )
            )
            labels.append((name, combo))
    results = eval_jobs.run_jobs(jobs, args.jobs)
    rows = [
        {
            "variant": name,
            "setting": combo,
            "val_ndcg@10": r["val_ndcg@10"],
            "per_window": [w["val_ndcg@10"] for w in r["windows"]],
            "train_seconds_per_window": r["train_seconds_per_window"],
        }
        for (name, combo), r in zip(labels, results, strict=True)
    ]
    best = {
        name: max((r for r in rows if r["variant"] == name), key=lambda r: r["val_ndcg@10"])
        for name in variants
    }
    args.out.mkdir(parents=True, exist_ok=True)
    document = {
        "dataset": dataset.name,
        "source": source,
        "seed": args.seed,
        "grid": grid,
        "rows": rows,
    }
    document["best"] = {n: b["setting"] for n, b in best.items()}
    (args.out / "tune.json").write_text(json.dumps(document, indent=2))
    lines = ["| variant | setting | validation NDCG@10 | s/window |", "|---|---|---|---|"]
    for r in rows:
        mark = " **best**" if r is best[r["variant"]] else ""
        setting = ", ".join(f"{k}={v}" for k, v in r["setting"].items())
        lines.append(
            f"| {r['variant']} | {setting}{mark} | {r['val_ndcg@10']:.4f} "
            f"| {r['train_seconds_per_window']:.1f} |"
        )
    (args.out / "tune.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))  # noqa: T201 - the CLI's own output
    print(f"wrote {args.out}/tune.json, tune.md")  # noqa: T201
    return 0
