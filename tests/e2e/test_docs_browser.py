"""Headless Chromium opens /docs and /redoc of a real `xsmoe serve` with every other
host unresolvable (as offline): both must render the API's operations."""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import pytest

from tests.e2e.conftest import Launcher

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def _rendered(url: str) -> str:
    """The DOM once the page's scripts have fetched /openapi.json and drawn it."""
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", OFFLINE]
    cmd += ["--virtual-time-budget=20000", "--dump-dom", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt install chromium)")
def test_docs_and_redoc_render_every_operation_offline(launch: Launcher) -> None:
    url = launch()
    spec = httpx.get(f"{url}/openapi.json").json()
    operations = [
        (op["tags"][0], op["operationId"], op["summary"])
        for ops in spec["paths"].values()
        for op in ops.values()
    ]
    swagger = _rendered(f"{url}/docs")
    drawn = set(re.findall(r'id="operations-([\w-]+)"', swagger))
    assert {f"{tag}-{op_id}" for tag, op_id, _ in operations} <= drawn, drawn
    assert "post_recommendations" in swagger  # operation ids shown, as clients name them
    redoc = _rendered(f"{url}/redoc")
    for _, op_id, summary in operations:
        assert f"operation/{op_id}" in redoc, op_id
        assert summary.replace("&", "&amp;") in redoc, summary
