"""`xsmoe features build`: encode a catalog into the item feature store."""

from __future__ import annotations

import argparse
from pathlib import Path

from xsmoe import pipeline
from xsmoe.cli_args import Parser, add_command, existing_file, positive_int
from xsmoe.common.settings import Settings
from xsmoe.model.data import load_catalog


def register(features: Parser) -> None:
    sub = features.add_subparsers(dest="features_command", required=True, metavar="ACTION")
    build = add_command(
        sub,
        "build",
        help="encode a catalog's items with the frozen encoders (reuses what is cached)",
        description="Encode every item not yet in the store; a second run reuses the cache.",
    )
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=pipeline.DATASETS, help="a built-in dataset")
    source.add_argument(
        "--catalog", type=existing_file, help="JSONL: item_id, text?, image? per line"
    )
    build.add_argument("--out", type=Path, help="store directory (default DATA_DIR/features/NAME)")
    build.add_argument("--batch-size", type=positive_int, default=64, help="items per batch")
    build.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace, settings: Settings) -> int:
    if args.dataset:
        name, items = args.dataset, pipeline.load_dataset(args.dataset).items
    else:
        name, items = args.catalog.stem, load_catalog(args.catalog)
    out = args.out or settings.features_dir(name)
    _, report = pipeline.ensure_features(settings, name, items, out, batch_size=args.batch_size)
    presence = ", ".join(f"{m} {n}/{report.total}" for m, n in report.present.items())
    print(  # noqa: T201 - the CLI's own output
        f"feature store {out}: {report.total} items ({report.encoded} encoded, "
        f"{report.reused} reused) in {report.seconds:.1f} s; present: {presence}"
    )
    return 0
