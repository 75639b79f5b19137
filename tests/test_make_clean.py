"""`make clean` leaves snapshots and Redis data alone; `make distclean` says what it
deletes and, without a terminal, deletes nothing unless CONFIRM=1."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The Makefile and its inputs, a venv, var/ with a snapshot and Redis data, caches."""
    for name in ("Makefile", "pyproject.toml", "requirements-assets.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in (
        ".venv/bin",
        "var/snapshots/v000001",
        "var/redis",
        ".pytest_cache",
        "pkg/__pycache__",
    ):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "var/snapshots/CURRENT").write_text("v000001")
    (tmp_path / "var/redis/appendonly.aof").write_text("*1\r\n")
    return tmp_path


def make(target: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *target],
        cwd=cwd,
        stdin=subprocess.DEVNULL,  # not a terminal
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_clean_keeps_snapshots_redis_data_and_the_venv(checkout: Path) -> None:
    assert make(["clean"], checkout).returncode == 0
    assert not (checkout / ".pytest_cache").exists() and not (checkout / "pkg/__pycache__").exists()
    assert (checkout / "var/snapshots/CURRENT").is_file() and (checkout / ".venv/bin").is_dir()
    assert (checkout / "var/redis/appendonly.aof").is_file()


def test_distclean_refuses_without_a_terminal_unless_confirmed(checkout: Path) -> None:
    refused = make(["distclean"], checkout)
    assert refused.returncode != 0
    assert "var/ (snapshots" in refused.stdout and "CONFIRM=1" in refused.stdout
    assert (checkout / "var/snapshots/CURRENT").is_file() and (checkout / ".venv").is_dir()
    done = make(["distclean", "CONFIRM=1"], checkout)
    assert done.returncode == 0, done.stderr
    assert not (checkout / "var").exists() and not (checkout / ".venv").exists()
