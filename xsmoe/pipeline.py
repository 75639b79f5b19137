"""Shared steps of the CLI commands: datasets, feature stores, model configs.

The model modules (torch) are imported by the steps that need them, not here: the
commands' parsers read DATASETS and add_dataset_options, and `--help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xsmoe.cli_args import existing_file
from xsmoe.common.settings import Settings
from xsmoe.model.data import (
    ML100K,
    Dataset,
    Interactions,
    load_catalog,
    load_interactions,
    load_movielens_100k,
)
from xsmoe.model.errors import DatasetError

if TYPE_CHECKING:
    from xsmoe.model.data import CatalogItem
    from xsmoe.model.feature_build import BuildReport, CatalogEncoder
    from xsmoe.model.features import FeatureStore
    from xsmoe.model.item_tower import ItemTable
    from xsmoe.model.recommender import RecommenderConfig
    from xsmoe.model.streaming import ProtocolConfig, StreamingProtocol

log = logging.getLogger(__name__)

DATASETS = (ML100K,)


def load_dataset(
    name: str, catalog: Path | str | None = None, interactions: Path | str | None = None
) -> Dataset:
    """A built-in dataset by name, or a user's own files (the catalog names the dataset)."""
    if catalog is not None:
        return load_files(Path(catalog), Path(interactions) if interactions else None)
    if interactions is not None:
        raise DatasetError("--interactions needs --catalog (the items they refer to)")
    if name == ML100K:
        return load_movielens_100k()
    raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def load_files(catalog: Path, interactions: Path | None) -> Dataset:
    """Catalog JSONL + interactions CSV/JSONL; events on items the catalog lacks are dropped
    (counted in the log), since nothing can be learned about an item without features."""
    items = load_catalog(catalog)
    if not items:
        raise DatasetError(f"{catalog}: the catalog has no items")
    events = load_interactions(interactions) if interactions else Interactions.from_rows([])
    known = {item.item_id for item in items}
    keep = np.fromiter((i in known for i in events.item_ids), bool, len(events))
    if not keep.all():
        missing = sorted({str(i) for i in events.item_ids[~keep]})
        log.warning(
            "%s: %d interactions name %d items that %s lacks (e.g. %s): dropped",
            interactions,
            int((~keep).sum()),
            len(missing),
            catalog,
            ", ".join(missing[:5]),
        )
        if not keep.any():
            raise DatasetError(f"{interactions}: no interaction names an item of {catalog}")
        events = Interactions(events.user_ids[keep], events.item_ids[keep], events.timestamps[keep])
    return Dataset(catalog.stem, items, events)


def add_dataset_options(cmd: argparse.ArgumentParser) -> None:
    """--dataset (built-in) or --catalog [--interactions] (your own files). The defaults come
    from XSMOE_DATASET, XSMOE_CATALOG and XSMOE_INTERACTIONS (how docker-compose passes them)."""
    cmd.add_argument(
        "--dataset",
        choices=DATASETS,
        default=os.environ.get("XSMOE_DATASET") or ML100K,
        help="a built-in dataset (env XSMOE_DATASET)",
    )
    cmd.add_argument(
        "--catalog",
        type=existing_file,
        default=os.environ.get("XSMOE_CATALOG") or None,
        help="your catalog (JSONL: item_id, text?, image?); replaces --dataset (env XSMOE_CATALOG)",
    )
    cmd.add_argument(
        "--interactions",
        type=existing_file,
        default=os.environ.get("XSMOE_INTERACTIONS") or None,
        help="your interactions (CSV with header user_id,item_id,timestamp, or JSONL; "
        "env XSMOE_INTERACTIONS)",
    )


def dataset_source(args: argparse.Namespace) -> dict[str, str | None]:
    """Where a command's data comes from, as plain strings (travels to child processes)."""
    return {
        "dataset": args.dataset,
        "catalog": str(args.catalog) if args.catalog else None,
        "interactions": str(args.interactions) if args.interactions else None,
    }


def dataset_from_args(args: argparse.Namespace) -> Dataset:
    return load_source(dataset_source(args))


def load_source(source: dict[str, str | None]) -> Dataset:
    return load_dataset(source["dataset"] or ML100K, source["catalog"], source["interactions"])


def catalog_encoder(settings: Settings) -> CatalogEncoder:
    from xsmoe.model.feature_build import CatalogEncoder

    return CatalogEncoder(
        settings.text.to_config(), settings.image.to_config(), cache_dir=settings.cache_dir
    )


def ensure_features(
    settings: Settings,
    name: str,
    items: Sequence[CatalogItem],
    out: Path | None = None,
    batch_size: int = 64,
) -> tuple[FeatureStore, BuildReport]:
    """Open the catalog's feature store and encode, with a progress bar, what it lacks."""
    from tqdm import tqdm

    from xsmoe.model.feature_build import build_features
    from xsmoe.model.features import FeatureStore

    encoder = catalog_encoder(settings)
    store = FeatureStore.open_or_create(out or settings.features_dir(name), encoder.specs())
    with tqdm(total=len(items), desc=f"encoding {name}", unit="item", file=sys.stderr) as bar:
        report = build_features(store, items, encoder, batch_size=batch_size, progress=bar.update)
    return store, report


def open_features(settings: Settings, name: str) -> FeatureStore:
    """Open an already built store, refusing one of another encoder."""
    from xsmoe.model.features import FeatureStore

    return FeatureStore.open(settings.features_dir(name), catalog_encoder(settings).specs())


def streaming_protocol(
    dataset: Dataset, store: FeatureStore, config: ProtocolConfig
) -> StreamingProtocol:
    """The dataset's interactions over the store's item rows, cut into windows."""
    from xsmoe.model.streaming import StreamingProtocol

    rows = {item: row for row, item in enumerate(store.item_ids)}
    return StreamingProtocol(dataset.interactions, rows, len(store), config)


def content_table(store: FeatureStore, modalities: Sequence[str] | None = None) -> ItemTable:
    """Item features of the modalities that at least one item has (of `modalities`, if given:
    the evaluation's text-only / image-only ablations).

    A modality no item has (images, for MovieLens) would only add parameters that
    never get a gradient; a catalog with images gets an image tower.
    """
    from xsmoe.model.item_tower import ItemTable

    table = ItemTable.from_store(store)
    unknown = sorted(set(modalities or ()) - set(store.modalities))
    if unknown:
        raise DatasetError(f"unknown modalities {unknown}; the store has {list(store.modalities)}")
    wanted = store.modalities if modalities is None else modalities
    used = [m for m in store.modalities if m in wanted and bool(table.present[m].any())]
    if not used:
        raise DatasetError(f"no item of the catalog has any of the modalities {list(wanted)}")
    return ItemTable({m: table.features[m] for m in used}, {m: table.present[m] for m in used})


def base_config(
    table: ItemTable,
    max_len: int | None = None,
    max_experts: int = 8,
    dropout: float | None = None,
) -> RecommenderConfig:
    """The recommender for the table's modalities (user encoder defaults unless given)."""
    from xsmoe.model.recommender import RecommenderConfig
    from xsmoe.model.user_encoder import UserEncoderConfig

    default = UserEncoderConfig()
    max_len = default.max_len if max_len is None else max_len
    dropout = default.dropout if dropout is None else dropout
    shapes = {m: (int(f.shape[1]), int(f.shape[2])) for m, f in table.features.items()}
    user = replace(default, max_len=max_len, dropout=dropout)
    return RecommenderConfig.for_content(shapes, user=user, max_experts=max_experts)
