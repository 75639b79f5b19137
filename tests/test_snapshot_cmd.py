from __future__ import annotations

import pytest

from common.keys import Keys
from model.snapshot import current_version
from service.settings import ServiceSettings
from tests.deployment import publish_snapshot
from workers.redis_client import connect
from xsmoe.cli import main


def test_list_promote_and_rollback_move_the_pointer_and_announce(
    settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = settings.snapshots
    publish_snapshot(root, settings, seed=1, make_current=False)
    monkeypatch.setenv("XSMOE_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("XSMOE_REDIS_PREFIX", settings.redis_prefix)
    assert main(["snapshot", "--snapshot-dir", str(root), "list"]) == 0
    listing = capsys.readouterr().out
    assert "*  v000001" in listing and "   v000002" in listing
    assert main(["snapshot", "--snapshot-dir", str(root), "promote", "v000002"]) == 0
    assert current_version(root) == "v000002"
    pointer = connect(settings.redis_url).get(Keys(settings.redis_prefix).snapshot_pointer)
    assert pointer == b"v000002"
    assert main(["snapshot", "--snapshot-dir", str(root), "rollback", "v000001"]) == 0
    assert current_version(root) == "v000001"
    assert main(["snapshot", "--snapshot-dir", str(root), "rollback", "v000009"]) == 2
    assert "no snapshot v000009" in capsys.readouterr().err
