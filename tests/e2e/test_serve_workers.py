"""`xsmoe serve --workers 2`: two real API processes on one port, each answering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.deployment import ITEM_IDS, env_of
from xsmoe.redis_server import free_port
from xsmoe.service.settings import ServiceSettings

pytestmark = pytest.mark.slow


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text()[-3000:])
        time.sleep(0.2)


@pytest.mark.timeout(240)
def test_two_workers_share_the_port_and_both_recommend(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "xsmoe", "serve", "--port", str(port), "--workers", "2"]
    env = {**os.environ, **env_of(settings)}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log)
        pids: set[str] = set()
        body = {"item_ids": ITEM_IDS[:3], "k": 5}
        # a fresh connection per request: the processes take turns accepting; until both
        # are ready, one of them answers alone, so keep asking until each has answered
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            with httpx.Client(base_url=url, timeout=10) as http:
                reply = http.post("/v1/recommendations", json=body)
            assert reply.status_code == 200, reply.text
            items = reply.json()["items"]
            assert len(items) == 5 and not set(body["item_ids"]) & {i["item_id"] for i in items}
            assert reply.json().get("fallback") is None  # the model answered, not popularity
            pids.add(reply.headers["x-xsmoe-pid"])
        assert len(pids) == 2, f"only {pids} answered"
        assert str(proc.pid) not in pids  # the workers answer, not the supervisor
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)  # bounded: workers get 15 s, then are killed
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, log.read_text()[-3000:]
    for pid in pids:  # no worker outlives the command
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
