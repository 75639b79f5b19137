from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.service.openapi_truth import openapi_tells_the_truth, response_recorder
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings

__all__ = ["openapi_tells_the_truth", "response_recorder"]  # every service test checks the docs


@pytest.fixture
def client(settings: ServiceSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
