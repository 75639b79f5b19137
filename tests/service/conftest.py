from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings


@pytest.fixture
def client(settings: ServiceSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
