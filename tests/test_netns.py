"""The namespace LAN harness itself: hosts reach each other by address, and nothing
is left behind by a teardown, a half-built LAN or a run that died."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import netns

pytestmark = pytest.mark.multihost


@pytest.fixture(autouse=True)
def _permitted() -> Iterator[None]:
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)
    yield


def _ours() -> tuple[set[str], set[str]]:
    """Namespaces and links named by this process."""
    spaces = {
        line.split()[0]
        for line in netns.ip("netns", "list").splitlines()
        if line.startswith(f"{netns.NETNS_PREFIX}{os.getpid()}-")
    }
    tag = f"{os.getpid():06x}"
    links = {
        line.split(":", 2)[1].strip().split("@")[0]
        for line in netns.ip("-o", "link", "show").splitlines()
        if f" xb{tag}" in line or f" xv{tag}" in line
    }
    return spaces, links


def _in(lan: netns.Lan, host: str, code: str) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", lan[host].netns, sys.executable, "-c", code]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


def test_hosts_reach_each_other_by_address_and_teardown_removes_everything(
    tmp_path: Path,
) -> None:
    with netns.lan(["a", "b"]) as lan:
        assert _ours() != (set(), set())
        server = lan.start(
            "a",
            [sys.executable, "-m", "http.server", "--bind", lan["a"].address, "8080"],
            os.environ,
            tmp_path / "a.log",
        )
        reach = (
            "import socket, time\n"
            "for _ in range(100):\n"
            "    try:\n"
            f"        socket.create_connection(({lan['a'].address!r}, 8080), timeout=1); break\n"
            "    except OSError: time.sleep(0.1)\n"
            "else: raise SystemExit('unreachable')\n"
        )
        assert _in(lan, "b", reach).returncode == 0, (tmp_path / "a.log").read_text()
        # b's own loopback is not a's: the server is reachable only over the LAN
        local = "import socket; socket.create_connection(('127.0.0.1', 8080), timeout=1)"
        assert "ConnectionRefused" in _in(lan, "b", local).stderr
    assert server.poll() is not None  # stopped by the teardown
    assert _ours() == (set(), set())


def test_a_half_built_lan_is_removed() -> None:
    lan = netns.Lan(["a", "b"])
    netns.ip("netns", "add", lan["b"].netns)  # b's name is taken: up() fails there
    try:
        with pytest.raises(netns.NetnsError), lan:
            pass
    finally:
        netns.ip("netns", "delete", lan["b"].netns, check=False)
    assert _ours() == (set(), set())


def test_stale_names_of_dead_runs_are_removed_and_live_ones_kept() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is now dead, as a killed test run's would be
    stale_ns = f"{netns.NETNS_PREFIX}{gone.pid}-0-x"
    stale_bridge = f"xb{gone.pid:06x}00"
    netns.ip("netns", "add", stale_ns)
    netns.ip("link", "add", stale_bridge, "type", "bridge")
    with netns.lan(["a"]) as lan:  # its entry removes the stale ones, not its own
        removed = netns.remove_stale()
        assert lan["a"].netns in netns.ip("netns", "list")
    assert stale_ns not in netns.ip("netns", "list")
    assert stale_bridge not in netns.ip("-o", "link", "show")
    assert stale_ns not in removed  # already taken away when the LAN was made
