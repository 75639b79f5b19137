from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import ServiceSettings
from tests.deployment import publish_snapshot, settings_for


@pytest.fixture
def settings(
    tmp_path: Path, redis_url: str, tiny_bert_dir: Path, tiny_dinov2_dir: Path
) -> ServiceSettings:
    settings = settings_for(tmp_path / "snapshots", redis_url, tiny_bert_dir, tiny_dinov2_dir)
    publish_snapshot(settings.snapshots, settings)
    return settings


@pytest.fixture
def client(settings: ServiceSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
