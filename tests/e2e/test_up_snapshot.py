"""`xsmoe snapshot promote` with no Redis URL given moves the version that a running
`xsmoe up` serves: it finds up's embedded Redis (random port) in DATA_DIR/run/up.json."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.deployment import env_of, publish_snapshot
from xsmoe.endpoints import endpoints_file
from xsmoe.redis_server import free_port
from xsmoe.service.settings import ServiceSettings

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_promote_reaches_the_api_that_up_started(settings: ServiceSettings, tmp_path: Path) -> None:
    second = publish_snapshot(settings.snapshots, settings, seed=1, make_current=False)
    env = {**os.environ, **env_of(settings), "PYTHONPATH": str(ROOT)}
    env.pop("XSMOE_REDIS_URL")  # -> up embeds a redis-server on a random port
    env.pop("XSMOE_CONFIG_FILE", None)
    port = free_port()
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "xsmoe", "up", "--port", str(port), "--no-worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    found = endpoints_file(settings.data_dir)
    try:
        deadline = time.monotonic() + 120
        while "xsmoe is up" not in log.read_text():
            assert up.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        assert found.is_file() and "redis://127.0.0.1:" in found.read_text()
        assert httpx.get(f"{url}/readyz").json()["version"] == "v000001"
        promote = subprocess.run(
            [sys.executable, "-m", "xsmoe", "snapshot", "promote", second],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert promote.returncode == 0, promote.stderr
        assert "the running `xsmoe up`" in promote.stdout
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/readyz").json().get("version") != second:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0
    assert not found.exists()  # removed on the way out
