"""`xsmoe up` on one machine: embedded redis-server, API and worker; SIGTERM stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.deployment import env_of
from xsmoe.redis_server import free_port
from xsmoe.service.settings import ServiceSettings

pytestmark = pytest.mark.slow


def test_up_serves_with_an_embedded_redis_and_stops_cleanly(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    env = {**os.environ, **env_of(settings)}
    env.pop("XSMOE_REDIS_URL")  # -> embedded redis-server under DATA_DIR/redis
    port = free_port()
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "xsmoe", "up", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while "xsmoe is up" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        assert httpx.get(f"{url}/readyz").json() == {
            "status": "ready",
            "version": "v000001",
            "redis": "ok",
        }
        r = httpx.post(f"{url}/v1/feedback", json={"user_id": "a", "item_id": "m1"})
        assert r.status_code == 401  # the test deployment sets a write key
        assert httpx.get(f"{url}/dashboard").status_code == 200
        text = log.read_text()
        assert f"dashboard  {url}/dashboard" in text and "embedded" in text
        assert (settings.data_dir / "redis" / "redis.log").is_file()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert "stopped" in log.read_text()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/readyz", timeout=2)
    leftover = subprocess.run(
        ["pgrep", "-f", str(settings.data_dir / "redis")], capture_output=True
    )
    assert leftover.stdout == b""  # its redis-server is gone too
