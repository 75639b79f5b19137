"""`xsmoe features build`: encode a catalog into the item feature store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from common.settings import Settings
from model.data import ML100K, load_catalog, load_movielens_100k
from model.feature_build import CatalogEncoder, build_features
from model.features import FeatureStore


def register(commands: Any) -> None:
    features = commands.add_parser("features", help="item feature store")
    sub = features.add_subparsers(dest="features_command", required=True, metavar="ACTION")
    build = sub.add_parser(
        "build",
        help="encode a catalog's items with the frozen encoders (reuses what is cached)",
        description="Encode every item not yet in the store; a second run reuses the cache.",
    )
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=[ML100K], help="a built-in dataset")
    source.add_argument("--catalog", type=Path, help="JSONL: item_id, text?, image? per line")
    build.add_argument("--out", type=Path, help="store directory (default DATA_DIR/features/NAME)")
    build.add_argument("--batch-size", type=int, default=64)
    build.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace, settings: Settings) -> int:
    if args.batch_size < 1:
        raise SystemExit("error: --batch-size must be >= 1")
    if args.dataset:
        name, items = args.dataset, load_movielens_100k().items
    else:
        name, items = args.catalog.stem, load_catalog(args.catalog)
    out = args.out or settings.features_dir(name)
    encoder = CatalogEncoder(
        settings.text.to_config(), settings.image.to_config(), cache_dir=settings.cache_dir
    )
    store = FeatureStore.open_or_create(out, encoder.specs())
    with tqdm(total=len(items), desc=f"encoding {name}", unit="item", file=sys.stderr) as bar:
        report = build_features(
            store, items, encoder, batch_size=args.batch_size, progress=bar.update
        )
    presence = ", ".join(f"{m} {n}/{report.total}" for m, n in report.present.items())
    print(  # noqa: T201 - the CLI's own output
        f"feature store {out}: {report.total} items ({report.encoded} encoded, "
        f"{report.reused} reused) in {report.seconds:.1f} s; present: {presence}"
    )
    return 0
