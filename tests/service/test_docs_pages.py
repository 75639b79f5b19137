"""/docs and /redoc load everything from this app: no CDN, so they work offline."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_outside(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"(?i)\b(https?:)?//[a-z0-9]", r.text), "a URL to another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        got = client.get(asset)
        assert got.status_code == 200, asset
        assert CONTENT_TYPES[asset[asset.rindex(".") :]] in got.headers["content-type"]
        assert len(got.content) > 1000  # the real file, not an error page
    assert "/openapi.json" in r.text
    assert client.get("/openapi.json").status_code == 200


def test_an_unknown_asset_is_a_json_404(client: TestClient) -> None:
    r = client.get("/docs/assets/nothing.js")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
