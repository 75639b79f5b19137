"""Headless Chromium loads /dashboard while feedback is replayed and a window trains;
the charts must render with data. The screenshot is kept as a test artifact."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.deployment import WRITE_KEY, planted_events, worker_env, worker_settings_for
from tests.e2e.conftest import Launcher
from xsmoe.common import ledger
from xsmoe.service.settings import ServiceSettings
from xsmoe_client import Client

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("XSMOE_TEST_ARTIFACTS", "var/test-artifacts"))


def _browser(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1300,1500"]
    return subprocess.run([*cmd, *args, url], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt install chromium)")
def test_dashboard_renders_charts_with_data_during_a_replay(
    launch: Launcher, settings: ServiceSettings, tmp_path: Path
) -> None:
    url = launch()
    wsettings = worker_settings_for(settings, window_events=200, epsilon=1.0)
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "xsmoe", "worker"],
        env={**os.environ, **worker_env(wsettings)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stop = threading.Event()

    def replay() -> None:  # ask, then click, like `xsmoe replay`
        with Client(url, api_key=WRITE_KEY) as xs:
            for event in planted_events(n_users=20, length=12, seed=9):
                if stop.is_set():
                    return
                xs.recommend(user_id=event["user_id"], k=10)
                xs.feedback(event["user_id"], event["item_id"], event_id=event["event_id"])

    thread = threading.Thread(target=replay)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not ledger.records(settings.snapshots):
            assert time.monotonic() < deadline and worker.poll() is None, "no window closed"
            time.sleep(0.2)
        time.sleep(6)  # at least one traffic sample after the replay started
        dom = _browser(f"{url}/dashboard", "--dump-dom").stdout
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        _browser(f"{url}/dashboard", f"--screenshot={shot.resolve()}")
    finally:
        stop.set()
        thread.join()
        worker.terminate()
        worker.wait(timeout=30)
    marks = {
        label.split(" ")[0]: int(n)
        for n, label in re.findall(r'data-marks="(\d+)"[^>]*aria-label="([^"]+)"', dom)
    }
    assert marks["per"] >= 2  # candidate and serving NDCG@10 of the first window
    assert marks["experts"] >= 4  # bootstrap + the new version, 2 stages each
    assert marks["utilization"] >= 3
    assert marks["requests/s"] >= 1
    assert "v000002" in dom and "promoted" in dom
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    assert httpx.get(f"{url}/readyz").json()["version"] == "v000002"
