from __future__ import annotations

import pytest

from tests.deployment import publish_snapshot
from tests.seaweed import SeaweedS3
from xsmoe.cli import main
from xsmoe.common.settings import Settings
from xsmoe.common.snapshot_store import open_store
from xsmoe.model.snapshot import current_version
from xsmoe.service.settings import ServiceSettings
from xsmoe.workers.redis_client import connect


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
    pointer = connect(settings.redis_url).get(settings.keys.snapshot_pointer)
    assert pointer == b"v000002"
    assert main(["snapshot", "--snapshot-dir", str(root), "rollback", "v000001"]) == 0
    assert current_version(root) == "v000001"
    assert main(["snapshot", "--snapshot-dir", str(root), "rollback", "v000009"]) == 2
    assert "no snapshot v000009" in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_list_and_promote_work_on_an_s3_store(
    settings: ServiceSettings,
    s3_server: SeaweedS3,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = settings.snapshots
    second = publish_snapshot(root, settings, seed=1, make_current=False)
    url = s3_server.store_url()
    s3 = s3_server.settings()
    for name, value in {
        "REDIS_URL": settings.redis_url,
        "REDIS_PREFIX": settings.redis_prefix,
        "S3__ENDPOINT_URL": s3_server.endpoint,
        "S3__ACCESS_KEY": s3.access_key.get_secret_value() if s3.access_key else "",
        "S3__SECRET_KEY": s3.secret_key.get_secret_value() if s3.secret_key else "",
        "S3__MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(f"XSMOE_{name}", value)
    store = open_store(Settings(), url)
    store.publish(root / "v000001")
    store.put(root / second)
    assert main(["snapshot", "--store", url, "list"]) == 0
    listing = capsys.readouterr().out
    assert "*  v000001" in listing and f"   {second}" in listing
    assert main(["snapshot", "--store", url, "promote", second]) == 0
    assert store.pointer() == second
    pointer = connect(settings.redis_url).get(settings.keys.snapshot_pointer)
    assert pointer == second.encode()
    assert current_version(root) == "v000001"  # the local directory is not the store
