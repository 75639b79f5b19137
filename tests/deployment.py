"""A tiny but real deployment for service tests: tiny random-init encoders, a
random-init recommender over 40 items, snapshots on disk, settings pointing at them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import torch

from common.settings import ImageEncoderSettings, TextEncoderSettings
from model.feature_build import CatalogEncoder
from model.item_tower import ItemTable
from model.recommender import Recommender, RecommenderConfig
from model.snapshot import save_snapshot, set_current
from model.user_encoder import UserEncoderConfig
from service.settings import ApiSettings, ServiceSettings, ServingSettings

WORDS = ["toy", "story", "movie", "action", "comedy", "drama", "horror", "love", "war", "space"]
ITEM_IDS = [f"m{i}" for i in range(40)]
WRITE_KEY, ADMIN_KEY, READ_KEY = "write-secret", "admin-secret", "read-secret"


def item_text(i: int) -> str:
    return f"the {WORDS[i % 10]} {WORDS[(i * 7 + 3) % 10]} {WORDS[(i // 10) % 10]} movie"


def settings_for(
    root: Path, redis_url: str, text_dir: Path, image_dir: Path, **api: object
) -> ServiceSettings:
    return ServiceSettings(
        redis_url=redis_url,
        redis_prefix=f"t{uuid.uuid4().hex[:10]}",
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
) -> str:
    """Encode the items with the deployment's encoders, build a random-init model, save."""
    ids = item_ids or ITEM_IDS
    encoder = CatalogEncoder(
        settings.text.to_config(), settings.image.to_config(), cache_dir=settings.cache_dir
    )
    specs = encoder.specs()
    texts = [item_text(int(i[1:]) if i[1:].isdigit() else n) for n, i in enumerate(ids)]
    rows = encoder.encode(texts, [None] * len(ids), specs)["text"]
    table = ItemTable(
        {"text": torch.from_numpy(rows.features)}, {"text": torch.from_numpy(rows.present)}
    )
    n_layers, hidden = rows.features.shape[1:]
    config = RecommenderConfig.for_content(
        {"text": (n_layers, hidden)},
        experts_per_stage=experts,
        embed_dim=32,
        bottleneck=8,
        user=UserEncoderConfig(dim=32, max_len=10, dropout=0.0),
    )
    torch.manual_seed(seed)
    model = Recommender(config).eval()
    embeddings = np.asarray(model.item_embeddings(table).numpy(), np.float32)
    path = save_snapshot(
        root,
        model,
        list(ids),
        embeddings,
        {"text": specs["text"]},
        metrics={"val_ndcg@10": 0.1 + seed / 100},
        extra={"popular": list(ids[::-1][:5])},
    )
    if make_current:
        set_current(root, path.name)
    return path.name


def env_of(settings: ServiceSettings) -> dict[str, str]:
    """The XSMOE_* environment that makes a `xsmoe serve` process use these settings."""
    env = {
        "XSMOE_REDIS_URL": settings.redis_url,
        "XSMOE_REDIS_PREFIX": settings.redis_prefix,
        "XSMOE_SNAPSHOT_DIR": str(settings.snapshots),
        "XSMOE_CACHE_DIR": str(settings.cache_dir),
        "XSMOE_TORCH_THREADS": "1",
        "XSMOE_SERVING__POLL_SECONDS": str(settings.serving.poll_seconds),
        "XSMOE_SERVING__SYNC_BLOCK_MS": str(settings.serving.sync_block_ms),
        "XSMOE_SERVING__WARMUP_QUERIES": str(settings.serving.warmup_queries),
    }
    for group in ("text", "image"):
        for name, value in getattr(settings, group).model_dump().items():
            key = f"XSMOE_{group.upper()}__{name.upper()}"
            env[key] = json.dumps(value) if isinstance(value, list) else str(value)
    for name in ("write_key", "admin_key", "read_key"):
        secret = getattr(settings.api, name)
        if secret is not None:
            env[f"XSMOE_API__{name.upper()}"] = secret.get_secret_value()
    env["XSMOE_API__MODE"] = settings.api.mode
    return env
