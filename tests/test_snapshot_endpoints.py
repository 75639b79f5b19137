"""`xsmoe snapshot` finds the Redis of a running `xsmoe up` (DATA_DIR/run/up.json) and
lists one metric per aligned column."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deployment import publish_snapshot
from xsmoe.cli import main
from xsmoe.cli_args import UsageError
from xsmoe.common.redis_url import redacted
from xsmoe.common.settings import Settings
from xsmoe.endpoints import endpoints_file, read_endpoints, write_endpoints
from xsmoe.service.settings import ServiceSettings
from xsmoe.snapshot_cmd import COLUMNS, redis_target
from xsmoe.workers.redis_client import connect


@pytest.fixture
def deployment(
    settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> tuple[ServiceSettings, str]:
    """The test deployment with a second version, and no XSMOE_REDIS_URL in sight."""
    second = publish_snapshot(settings.snapshots, settings, seed=1, make_current=False)
    monkeypatch.delenv("XSMOE_REDIS_URL", raising=False)
    monkeypatch.delenv("XSMOE_CONFIG_FILE", raising=False)
    monkeypatch.setenv("XSMOE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("XSMOE_REDIS_PREFIX", settings.redis_prefix)
    monkeypatch.setenv("XSMOE_REDIS_SHARDS", str(settings.redis_shards))
    return settings, second


def test_rollback_uses_the_redis_of_a_running_up(
    deployment: tuple[ServiceSettings, str], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, second = deployment
    write_endpoints(settings.data_dir, settings.redis_url, "http://127.0.0.1:8000")
    root = str(settings.snapshots)
    assert main(["snapshot", "promote", second, "--snapshot-dir", root]) == 0
    out = capsys.readouterr().out
    assert f"-> {second}; announced on Redis {settings.redis_url}" in out
    assert "the running `xsmoe up`" in out
    pointer = connect(settings.redis_url).get(settings.keys.snapshot_pointer)
    assert pointer == second.encode()
    assert main(["snapshot", "--snapshot-dir", root, "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[0], lines[1:3]
    assert header.split() == [c for part in COLUMNS for c in part.split()]
    for row in rows:  # every column starts where its header does
        assert row.index("v00000") == header.index("version")
        assert row[header.index("created") : header.index("created") + 2] == "20"
    assert rows[1].startswith("*  ") and rows[0].startswith("   v000001")
    assert f"the API replicas follow {second}" in lines[-1]


def test_an_explicit_redis_url_wins_over_the_running_up(
    deployment: tuple[ServiceSettings, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _ = deployment
    write_endpoints(settings.data_dir, "redis://127.0.0.1:1/0", "http://127.0.0.1:8000")
    args = argparse.Namespace(redis_url=None)
    assert redis_target(args, Settings())[0] == "redis://127.0.0.1:1/0"
    monkeypatch.setenv("XSMOE_REDIS_URL", settings.redis_url)
    assert redis_target(args, Settings()) == (settings.redis_url, "XSMOE_REDIS_URL")
    args.redis_url = "redis://127.0.0.1:2/0"
    assert redis_target(args, Settings()) == ("redis://127.0.0.1:2/0", "--redis-url")


def test_an_unreachable_redis_fails_the_rollback_saying_which(
    deployment: tuple[ServiceSettings, str], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, second = deployment
    write_endpoints(settings.data_dir, "redis://127.0.0.1:1/0", "http://127.0.0.1:8000")
    root = str(settings.snapshots)
    assert main(["snapshot", "--snapshot-dir", root, "rollback", second]) == 1
    err = capsys.readouterr().err
    assert "redis://127.0.0.1:1/0 (the running `xsmoe up`" in err and "did not move" in err


def test_a_stopped_up_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XSMOE_REDIS_URL", raising=False)
    path = write_endpoints(tmp_path, "redis://127.0.0.1:1/0", "http://127.0.0.1:8000")
    body = json.loads(path.read_text())
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path.write_text(json.dumps({**body, "pid": gone.pid}))
    assert read_endpoints(tmp_path) is None
    settings = Settings(data_dir=tmp_path)
    url, source = redis_target(argparse.Namespace(redis_url=None), settings)
    assert url == Settings.model_fields["redis_url"].default and "the default" in source


def test_a_redis_password_is_never_written_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XSMOE_REDIS_URL", raising=False)
    write_endpoints(tmp_path, "redis://app:hunter2@127.0.0.1:6390/0", "http://127.0.0.1:8000")
    assert "hunter2" not in endpoints_file(tmp_path).read_text()
    assert endpoints_file(tmp_path).stat().st_mode & 0o077 == 0  # owner-only
    write_endpoints(tmp_path, "redis://127.0.0.1:6390/0?password=hunter2", "http://x:1")
    assert "hunter2" not in endpoints_file(tmp_path).read_text()
    assert redacted("redis://app:hunter2@h:1/0") == "redis://app:***@h:1/0"
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(UsageError, match="pass --redis-url"):
        redis_target(argparse.Namespace(redis_url=None), settings)
