"""Shared fixtures: tiny random-init Hugging Face models built inside the tests."""

from __future__ import annotations

import faulthandler
import os
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from xsmoe.service.settings import ServiceSettings

if TYPE_CHECKING:
    from tests.seaweed import SeaweedS3

TINY_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "a", "toy", "story", "movie", "action", "comedy", "drama", "horror", "love",
    "war", "space", "star", "night", "day", "(", ")", ".", ",", ":", "genres",
    "1995", "1996", "1997", "children", "'", "s", "thriller", "crime", "sci", "-", "fi",
]  # fmt: skip


# pytest-timeout fails a hung test by SIGALRM; a hang where that signal cannot act
# (the main thread blocked in C, or the alarm swallowed by a teardown) would still
# hold the session. This second net dumps every thread's stack and ends the run.
HARD_MARGIN_S = 120


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    marker = item.get_closest_marker("timeout")
    limit = (
        float(marker.args[0])
        if marker and marker.args
        else float(item.config.getini("timeout") or 300)
    )
    faulthandler.dump_traceback_later(limit + HARD_MARGIN_S, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT with a 37-token vocabulary, random init, saved as an HF folder."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(TINY_VOCAB)})
    assert tokenizer("toy story")["input_ids"] == [2, 7, 8, 3]  # a real vocabulary, not [UNK]s
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(TINY_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer ViT (patch 8, 32 px), random init, saved as an HF folder."""
    from transformers import ViTConfig, ViTModel

    folder = tmp_path_factory.mktemp("tiny-vit")
    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_dinov2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer DINOv2 (patch 14), random init, saved as an HF folder."""
    from transformers import Dinov2Config, Dinov2Model

    folder = tmp_path_factory.mktemp("tiny-dinov2")
    torch.manual_seed(0)
    config = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_ratio=2,
        image_size=56,
        patch_size=14,
    )
    Dinov2Model(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis of our own on free ports (never the one on 6379): one server, or
    with XSMOE_TEST_REDIS=cluster a 3-master Redis Cluster, or with
    XSMOE_TEST_REDIS=sentinel a primary, a replica and 3 sentinels (the whole suite
    then runs against that shape)."""
    from xsmoe.redis_server import EmbeddedCluster, EmbeddedRedis, EmbeddedSentinels

    shape = os.environ.get("XSMOE_TEST_REDIS", "single")
    root = tmp_path_factory.mktemp("redis")
    if shape == "cluster":
        with EmbeddedCluster(root) as cluster:
            yield cluster.url
    elif shape == "sentinel":
        primary = EmbeddedRedis(root / "primary", persist=False)
        follow = ("--replicaof", "127.0.0.1", str(primary.port))
        replica = EmbeddedRedis(root / "replica", persist=False, extra=follow)
        with primary, replica, EmbeddedSentinels(root / "sentinels", primary) as sentinels:
            yield sentinels.url()
    elif shape == "single":
        with EmbeddedRedis(root, persist=False) as server:
            yield server.url
    else:
        raise pytest.UsageError(f"XSMOE_TEST_REDIS={shape!r}: use single, sentinel or cluster")


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-master Redis Cluster of our own (for the tests that are about the cluster)."""
    from xsmoe.redis_server import EmbeddedCluster

    with EmbeddedCluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster.url


def single_redis_only() -> pytest.MarkDecorator:
    """For tests that start, stop or inspect one redis-server of their own."""
    shape = os.environ.get("XSMOE_TEST_REDIS", "single")
    return pytest.mark.skipif(shape != "single", reason=f"needs one redis-server, not {shape}")


@pytest.fixture
def settings(
    tmp_path: Path, redis_url: str, tiny_bert_dir: Path, tiny_dinov2_dir: Path
) -> ServiceSettings:
    """A tiny deployment: its own Redis key prefix, v000001 published and current."""
    from tests.deployment import publish_snapshot, settings_for

    settings = settings_for(tmp_path / "snapshots", redis_url, tiny_bert_dir, tiny_dinov2_dir)
    publish_snapshot(settings.snapshots, settings)
    return settings


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A real S3-compatible server (SeaweedFS) of our own on free ports of 127.0.0.1."""
    from tests.seaweed import SeaweedS3

    with SeaweedS3(tmp_path_factory.mktemp("seaweed")) as server:
        yield server
