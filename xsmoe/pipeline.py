"""Shared steps of the CLI commands: datasets, feature stores, model configs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from common.settings import Settings
from model.data import ML100K, CatalogItem, Dataset, load_movielens_100k
from model.errors import DatasetError
from model.feature_build import BuildReport, CatalogEncoder, build_features
from model.features import FeatureStore
from model.item_tower import ItemTable
from model.recommender import RecommenderConfig
from model.streaming import ProtocolConfig, StreamingProtocol
from model.user_encoder import UserEncoderConfig

DATASETS = (ML100K,)


def load_dataset(name: str) -> Dataset:
    if name == ML100K:
        return load_movielens_100k()
    raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def catalog_encoder(settings: Settings) -> CatalogEncoder:
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
    encoder = catalog_encoder(settings)
    store = FeatureStore.open_or_create(out or settings.features_dir(name), encoder.specs())
    with tqdm(total=len(items), desc=f"encoding {name}", unit="item", file=sys.stderr) as bar:
        report = build_features(store, items, encoder, batch_size=batch_size, progress=bar.update)
    return store, report


def open_features(settings: Settings, name: str) -> FeatureStore:
    """Open an already built store, refusing one of another encoder."""
    return FeatureStore.open(settings.features_dir(name), catalog_encoder(settings).specs())


def streaming_protocol(
    dataset: Dataset, store: FeatureStore, config: ProtocolConfig
) -> StreamingProtocol:
    """The dataset's interactions over the store's item rows, cut into windows."""
    rows = {item: row for row, item in enumerate(store.item_ids)}
    return StreamingProtocol(dataset.interactions, rows, len(store), config)


def content_table(store: FeatureStore) -> ItemTable:
    """Item features of the modalities that at least one item has.

    A modality no item has (images, for MovieLens) would only add parameters that
    never get a gradient; a catalog with images gets an image tower.
    """
    table = ItemTable.from_store(store)
    used = [m for m in store.modalities if bool(table.present[m].any())]
    return ItemTable({m: table.features[m] for m in used}, {m: table.present[m] for m in used})


def base_config(
    table: ItemTable,
    max_len: int = UserEncoderConfig.max_len,
    max_experts: int = 8,
    dropout: float = UserEncoderConfig.dropout,
) -> RecommenderConfig:
    shapes = {m: (int(f.shape[1]), int(f.shape[2])) for m, f in table.features.items()}
    user = replace(UserEncoderConfig(), max_len=max_len, dropout=dropout)
    return RecommenderConfig.for_content(shapes, user=user, max_experts=max_experts)
