from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.deployment import env_of
from xsmoe.redis_server import free_port
from xsmoe.service.settings import ServiceSettings

Launcher = Callable[[], str]


@pytest.fixture
def launch(settings: ServiceSettings, tmp_path: Path) -> Iterator[Launcher]:
    """Start `xsmoe serve` processes on free ports; returns their base URLs."""
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> str:
        port = free_port()
        log = (tmp_path / f"serve-{port}.log").open("wb")
        env = {**os.environ, **env_of(settings)}
        cmd = [sys.executable, "-m", "xsmoe", "serve", "--port", str(port)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            if procs[-1].poll() is not None or time.monotonic() > deadline:
                log.close()
                raise RuntimeError((tmp_path / f"serve-{port}.log").read_text()[-3000:])
            time.sleep(0.1)

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
