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
from xsmoe.redis_server import free_port
from xsmoe.service.settings import ServiceSettings
from xsmoe_client import Client

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("XSMOE_TEST_ARTIFACTS", "var/test-artifacts"))


def _browser(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1450"]
    return subprocess.run([*cmd, *args, url], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt install chromium)")
def test_dashboard_renders_charts_with_data_during_a_replay(
    launch: Launcher, settings: ServiceSettings, tmp_path: Path
) -> None:
    url = launch()
    metrics_port = free_port()
    wsettings = worker_settings_for(
        settings, window_events=200, epsilon=1.0, metrics_port=metrics_port
    )
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

    def read() -> None:  # recommendations go on after the swap: traffic on v000002
        with Client(url) as xs:
            while not stop.is_set():
                xs.recommend(user_id="u1", k=10)
                time.sleep(0.05)

    thread = threading.Thread(target=replay)
    thread.start()
    reader = threading.Thread(target=read)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not ledger.records(settings.snapshots):
            assert time.monotonic() < deadline and worker.poll() is None, "no window closed"
            time.sleep(0.2)
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/readyz").json().get("version") != "v000002":
            assert time.monotonic() < deadline, "v000002 not served"
            time.sleep(0.2)
        time.sleep(11)  # two traffic samples on v000002
        dom = _browser(f"{url}/dashboard", "--dump-dom").stdout
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "dashboard.html").write_text(dom)
        shot = ARTIFACTS / "dashboard.png"
        _browser(f"{url}/dashboard", f"--screenshot={shot.resolve()}")
    finally:
        stop.set()
        thread.join()
        reader.join()
        worker.terminate()
        worker.wait(timeout=30)
    marks = {
        label.split(" ")[0]: int(n)
        for n, label in re.findall(r'data-marks="(\d+)"[^>]*aria-label="([^"]+)"', dom)
    }
    assert marks["per"] >= 2  # candidate and serving NDCG@10 of the first window
    assert marks["experts"] >= 4  # bootstrap + the new version, 2 stages each
    assert marks["utilization"] >= 3
    assert marks["requests/s"] >= 2  # all and 5xx
    assert marks["latency"] >= 2  # p50 and p99
    assert "v000002" in dom and "promoted" in dom
    # one window closed (200 of 240 events): nothing is scored on v000002 yet, and the
    # figure of v000001 (the window's serving version) is kept beside it
    assert "no clicks yet on v000002" in dom and "v000001 had " in dom
    assert "parent v000001" in dom and "test-worker" in dom and " leads" in dom
    served = re.search(r'v000002 \(serving\)</td><td class="?n"?>([\d,]+)<', dom)
    assert served and int(served[1].replace(",", "")) > 0  # counted under the version it hit
    assert "expansion" in dom  # the bootstrap's stages each gained an expert
    assert 'xsmoe_worker_windows_total{outcome="promoted"} 1.0' in scraped  # the process's
    assert "xsmoe_worker_leader 1.0" in scraped
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    assert httpx.get(f"{url}/readyz").json()["version"] == "v000002"
