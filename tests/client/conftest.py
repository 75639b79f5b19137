"""A real xsmoe server for the client's tests (the tiny deployment with a text and
an image tower, under uvicorn on a free port, real Redis), and each test's client:
the sync Client, or the AsyncClient driven on an event loop of its own."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.client.blocking import blocking
from tests.deployment import WRITE_KEY, publish_snapshot, settings_for
from tests.service.live import Live, live_server
from xsmoe.service.settings import ServiceSettings
from xsmoe_client import Client

FLAVORS = ["sync", "async"]


@contextlib.contextmanager
def open_client(flavor: str, url: str, **options: Any) -> Iterator[Any]:
    """A Client, or an AsyncClient behind the same blocking calls (see blocking.py)."""
    if flavor == "sync":
        with Client(url, **options) as client:
            yield client
    else:
        with blocking(url, **options) as client:
            yield client


@pytest.fixture(scope="session")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    tiny_bert_dir: Path,
    tiny_dinov2_dir: Path,
) -> ServiceSettings:
    root = tmp_path_factory.mktemp("client-deployment") / "snapshots"
    settings = settings_for(root, redis_url, tiny_bert_dir, tiny_dinov2_dir)
    publish_snapshot(root, settings, images=True)
    return settings


@pytest.fixture(scope="session")
def server(deployment: ServiceSettings) -> Iterator[Live]:
    with live_server(deployment) as live:
        yield live


@pytest.fixture(scope="session")
def openapi(server: Live) -> dict[str, Any]:
    spec: dict[str, Any] = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    return spec


@pytest.fixture
def needs(openapi: dict[str, Any]) -> Callable[[str, str], None]:
    """Fail unless the server documents the route, e.g. needs("PUT", "/v1/items/{}"):
    a route the client calls that the server dropped or renamed is a failure."""
    routes = {
        (method.upper(), re.sub(r"\{[^}]*\}", "{}", path))
        for path, operations in openapi["paths"].items()
        for method in operations
    }

    def check(method: str, path: str) -> None:
        if (method, path) not in routes:
            pytest.fail(f"the server documents no {method} {path}; the client calls it")

    return check


@pytest.fixture(params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def xs(flavor: str, server: Live) -> Iterator[Client]:
    """A client with the write key (in dev mode reads are open)."""
    with open_client(flavor, server.url, api_key=WRITE_KEY) as client:
        yield client


@pytest.fixture
def uid(flavor: str) -> Callable[[str], str]:
    """Fresh ids: the session's server never reuses an item id."""
    run = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{flavor}-{run}"
