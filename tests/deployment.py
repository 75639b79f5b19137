"""A tiny but real deployment for service tests: tiny random-init encoders, a
random-init recommender over 40 items, snapshots on disk, settings pointing at them."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np
import torch

from xsmoe.common.settings import ImageEncoderSettings, Settings, TextEncoderSettings
from xsmoe.model.feature_build import CatalogEncoder
from xsmoe.model.features import FeatureStore
from xsmoe.model.item_tower import ItemTable
from xsmoe.model.recommender import Recommender, RecommenderConfig
from xsmoe.model.snapshot import save_snapshot, set_current
from xsmoe.model.user_encoder import UserEncoderConfig
from xsmoe.service.settings import ApiSettings, ServiceSettings, ServingSettings
from xsmoe.workers.redis_client import connect
from xsmoe.workers.settings import WorkerOptions, WorkerSettings

DATASET = "tiny"
WORDS = ["toy", "story", "movie", "action", "comedy", "drama", "horror", "love", "war", "space"]
ITEM_IDS = [f"m{i}" for i in range(40)]
# Long enough for prod mode (16 characters at least).
WRITE_KEY, ADMIN_KEY, READ_KEY = "write-secret-0123", "admin-secret-0123", "read-secret-01234"


def item_text(i: int) -> str:
    return f"the {WORDS[i % 10]} {WORDS[(i * 7 + 3) % 10]} {WORDS[(i // 10) % 10]} movie"


def settings_for(
    root: Path, redis_url: str, text_dir: Path, image_dir: Path, **api: object
) -> ServiceSettings:
    return ServiceSettings(
        data_dir=root.parent / "data",
        redis_url=redis_url,
        redis_prefix=f"t{uuid.uuid4().hex[:10]}",
        # XSMOE_TEST_REDIS_SHARDS=8 runs the suite with feedback spread over 8 shards.
        redis_shards=int(os.environ.get("XSMOE_TEST_REDIS_SHARDS", "1")),
        snapshot_dir=root,
        cache_dir=root / "cache",
        text=TextEncoderSettings(model=str(text_dir), layers=[0, 1, 2], max_tokens=16),
        image=ImageEncoderSettings(
            model=str(image_dir), layers=[0, 1, 2], image_size=56, resize_size=64
        ),
        api=ApiSettings(write_key=WRITE_KEY, admin_key=ADMIN_KEY, **api),  # type: ignore[arg-type]
        serving=ServingSettings(poll_seconds=0.1, sync_block_ms=50, warmup_queries=2),
    )


def publish_snapshot(
    root: Path,
    settings: ServiceSettings,
    *,
    seed: int = 0,
    item_ids: list[str] | None = None,
    experts: int = 1,
    make_current: bool = True,
    content_only: bool = False,
    images: bool = False,
    announce: bool = False,
) -> str:
    """Encode the items with the deployment's encoders, build a random-init model, save.
    `announce`: also set the Redis pointer and announce it, as the worker does (needed
    once a Redis pointer exists: replicas follow it over the CURRENT file)."""
    ids = item_ids or ITEM_IDS
    encoder = CatalogEncoder(
        settings.text.to_config(), settings.image.to_config(), cache_dir=settings.cache_dir
    )
    specs = encoder.specs()
    store = FeatureStore.open_or_create(settings.features_dir(DATASET), specs)
    todo = [i for i in ids if i not in store]
    if todo:
        texts = [item_text(int(i[1:]) if i[1:].isdigit() else n) for n, i in enumerate(todo)]
        store.append(todo, encoder.encode(texts, [None] * len(todo), specs))
    ids = list(store.item_ids)  # the snapshot covers the store, in its row order
    full = ItemTable.from_store(store)
    used = ["text", "image"] if images else ["text"]  # images: an image tower beside text
    table = ItemTable({m: full.features[m] for m in used}, {m: full.present[m] for m in used})
    config = RecommenderConfig.for_content(
        {m: (int(table.features[m].shape[1]), int(table.features[m].shape[2])) for m in used},
        experts_per_stage=experts,
        embed_dim=32,
        bottleneck=8,
        user=UserEncoderConfig(dim=32, max_len=10, dropout=0.0),
        # stands for a trained (bootstrap) snapshot, which the worker grows; or for the
        # content-only first snapshot of a catalog with no interactions yet
        trained_windows=0 if content_only else 1,
        content_only=content_only,
    )
    torch.manual_seed(seed)
    model = Recommender(config).eval()
    embeddings = np.asarray(model.item_embeddings(table).numpy(), np.float32)
    path = save_snapshot(
        root,
        model,
        list(ids),
        embeddings,
        {m: specs[m] for m in used},
        metrics={"val_ndcg@10": 0.1 + seed / 100},
        extra={"popular": list(ids[::-1][:5]), "source": {"dataset": DATASET}},
    )
    if make_current:
        set_current(root, path.name)
    if announce:
        announce_pointer(settings, path.name)
    return path.name


def announce_pointer(settings: Settings, version: str) -> None:
    """Set the Redis pointer and announce it on the channel (what every publisher does)."""
    keys = settings.keys
    client = connect(settings.redis_url, socket_timeout=5)
    try:
        client.set(keys.snapshot_pointer, version)
        client.publish(keys.snapshot_channel, version)
    finally:
        client.close()


def _shared_env(settings: Settings) -> dict[str, str]:
    """XSMOE_* variables of the settings every process of a deployment shares."""
    env = {
        "XSMOE_DATA_DIR": str(settings.data_dir),
        "XSMOE_REDIS_URL": settings.redis_url,
        "XSMOE_REDIS_PREFIX": settings.redis_prefix,
        "XSMOE_REDIS_SHARDS": str(settings.redis_shards),
        "XSMOE_SNAPSHOT_DIR": str(settings.snapshots),
        "XSMOE_CACHE_DIR": str(settings.cache_dir),
        "XSMOE_TORCH_THREADS": "1",
    }
    for group in ("text", "image"):
        for name, value in getattr(settings, group).model_dump().items():
            key = f"XSMOE_{group.upper()}__{name.upper()}"
            env[key] = json.dumps(value) if isinstance(value, list) else str(value)
    return env


def env_of(settings: ServiceSettings) -> dict[str, str]:
    """The environment that makes a `xsmoe serve` process use these settings."""
    env = _shared_env(settings)
    for name in ("poll_seconds", "sync_block_ms", "warmup_queries"):
        env[f"XSMOE_SERVING__{name.upper()}"] = str(getattr(settings.serving, name))
    for name in ("write_key", "admin_key", "read_key"):
        secret = getattr(settings.api, name)
        if secret is not None:
            env[f"XSMOE_API__{name.upper()}"] = secret.get_secret_value()
    env["XSMOE_API__MODE"] = settings.api.mode
    return env


def worker_settings_for(settings: ServiceSettings, **worker: object) -> WorkerSettings:
    """The worker of the same deployment (same Redis prefix, snapshots, feature store)."""
    base = {"consumer": "test-worker", "block_ms": 100, "max_epochs": 8, "context": 20}
    return WorkerSettings(
        data_dir=settings.data_dir,
        redis_url=settings.redis_url,
        redis_prefix=settings.redis_prefix,
        redis_shards=settings.redis_shards,
        snapshot_dir=settings.snapshots,
        snapshot_store=settings.snapshot_store,
        s3=settings.s3,
        cache_dir=settings.cache_dir,
        text=settings.text,
        image=settings.image,
        worker=WorkerOptions.model_validate({**base, **worker}),
    )


def worker_env(settings: WorkerSettings) -> dict[str, str]:
    """The environment that makes a `xsmoe worker` process use these settings."""
    env = _shared_env(settings)
    for name, value in settings.worker.model_dump().items():
        if value is not None:
            env[f"XSMOE_WORKER__{name.upper()}"] = str(value)
    return env


def planted_events(
    n_users: int, length: int, seed: int = 0, prefix: str = "u"
) -> list[dict[str, str]]:
    """Users walking the catalog cycle m_i -> m_(i+1): a pattern a model can learn.
    Interleaved in time: step k of every user, then step k + 1."""
    rng = np.random.default_rng(seed)
    events = []
    for u in range(n_users):
        start = int(rng.integers(len(ITEM_IDS)))
        for k in range(length):
            events.append(
                {
                    "event_id": f"{prefix}{u}-{k}-{seed}",
                    "user_id": f"{prefix}{u}",
                    "item_id": ITEM_IDS[(start + k) % len(ITEM_IDS)],
                }
            )
    return [events[i] for i in sorted(range(len(events)), key=lambda i: i % length)]


def own_files(catalog: Path, n_items: int = 20, n_users: int = 25, length: int = 20,
              images: bool = False) -> Path:  # fmt: skip
    """A user's own files: a catalog of `n_items` products and a CSV log where each user
    walks the item cycle (ISO timestamps), plus one event on an item the catalog lacks.
    `images`: every third item has a PNG (relative path) and every fifth has no text."""
    from PIL import Image

    rows: list[dict[str, str]] = []
    for i in range(n_items):
        row = {"item_id": f"p{i}", "text": f"product {i} in aisle {i % 4}"}
        if images and i % 3 == 0:
            (catalog.parent / "img").mkdir(exist_ok=True)
            Image.new("RGB", (40, 40), (i * 12, 50, 200)).save(catalog.parent / f"img/{i}.png")
            row["image"] = f"img/{i}.png"
        if images and i % 5 == 0:
            row.pop("text")
        rows.append(row)
    catalog.write_text("\n".join(json.dumps(row) for row in rows))
    lines = ["user_id,item_id,timestamp"]
    for k in range(length):
        for u in range(n_users):
            lines.append(f"u{u},p{(u + k) % n_items},2026-01-{1 + k:02d}T{u % 24:02d}:00:00")
    lines.append("u0,ghost,2026-02-01T00:00:00")
    events = catalog.parent / "events.csv"
    events.write_text("\n".join(lines) + "\n")
    return events
