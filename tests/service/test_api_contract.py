"""Auth, errors and limits: every bad request gets a 4xx naming what was wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from tests.deployment import ADMIN_KEY, READ_KEY, WRITE_KEY
from xsmoe.service.app import create_app
from xsmoe.service.settings import ApiSettings, ServiceSettings

EVENT = {"user_id": "u", "item_id": "m1"}


def test_write_and_admin_routes_need_their_keys(client: TestClient) -> None:
    r = client.post("/v1/feedback", json=EVENT)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert "X-API-Key" in r.json()["detail"]
    r = client.post("/v1/feedback", json=EVENT, headers={"X-API-Key": "nope"})
    assert r.status_code == 403
    assert client.post("/v1/feedback", json=EVENT, headers={"X-API-Key": ADMIN_KEY}).is_success
    rollback = {"version": "v000001"}
    assert client.post("/v1/admin/rollback", json=rollback).status_code == 401
    r = client.post("/v1/admin/rollback", json=rollback, headers={"X-API-Key": WRITE_KEY})
    assert r.status_code == 403
    r = client.post("/v1/admin/rollback", json=rollback, headers={"X-API-Key": ADMIN_KEY})
    assert r.status_code == 200, r.text
    assert client.get("/v1/model").status_code == 200  # reads are open in dev mode


def test_prod_mode_refuses_to_start_without_keys_and_keys_reads(
    settings: ServiceSettings,
) -> None:
    with pytest.raises(ValidationError, match="XSMOE_API__READ_KEY"):
        ApiSettings(mode="prod", write_key="w", admin_key="a")  # type: ignore[arg-type]
    api = settings.api.model_copy(update={"mode": "prod", "read_key": READ_KEY})
    prod = settings.model_copy(update={"api": ApiSettings.model_validate(api.model_dump())})
    with TestClient(create_app(prod)) as client:
        assert client.get("/v1/model").status_code == 401
        for key in (READ_KEY, WRITE_KEY, ADMIN_KEY):
            assert client.get("/v1/model", headers={"X-API-Key": key}).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes stay open


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"read_key": "   "}, "XSMOE_API__READ_KEY is blank"),
        ({"write_key": "\t\n"}, "XSMOE_API__WRITE_KEY is blank"),
        ({"admin_key": " " + ADMIN_KEY}, "XSMOE_API__ADMIN_KEY is blank or starts or ends"),
        ({"read_key": "short"}, "at least 16 characters: XSMOE_API__READ_KEY has 5"),
    ],
)
def test_prod_mode_refuses_blank_or_short_keys_naming_the_setting(
    keys: dict[str, str], message: str
) -> None:
    good = {"read_key": READ_KEY, "write_key": WRITE_KEY, "admin_key": ADMIN_KEY}
    with pytest.raises(ValidationError, match=message):
        ApiSettings.model_validate({"mode": "prod", **good, **keys})
    assert ApiSettings.model_validate({"mode": "prod", **good}).read_key is not None


def test_an_empty_key_variable_means_unset_and_a_blank_one_is_refused() -> None:
    assert ApiSettings.model_validate({"write_key": ""}).write_key is None  # compose's ${X:-}
    with pytest.raises(ValidationError, match="XSMOE_API__WRITE_KEY is blank"):
        ApiSettings.model_validate({"write_key": "  "})  # dev mode too: no header matches it


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"item_ids": ["m1"], "k": 0}, "body.k"),
        ({"item_ids": ["m1"], "k": 201}, "body.k"),
        ({"item_ids": ["m1"], "k": "ten"}, "body.k"),
        ({"item_ids": "m1"}, "body.item_ids"),
        ({"item_ids": [""]}, "body.item_ids[0]"),
        ({"user_id": "a" * 129}, "body.user_id"),
        ({"item_ids": ["m1"], "colour": "red"}, "body.colour"),
    ],
)
def test_invalid_recommendation_requests_name_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    r = client.post("/v1/recommendations", json=body)
    assert r.status_code == 422
    out = r.json()
    assert out["error"] == "invalid_input" and out["detail"].startswith(field)
    assert out["fields"][0]["field"] == field


def test_invalid_feedback_names_the_field(client: TestClient) -> None:
    w = {"X-API-Key": WRITE_KEY}
    r = client.post("/v1/feedback", json={**EVENT, "type": "smile"}, headers=w)
    assert r.status_code == 422 and "allowed" in r.json()["detail"]
    assert "'click'" in r.json()["detail"]
    r = client.post("/v1/feedback", json={"events": []}, headers=w)
    assert r.status_code == 422 and "events" in r.json()["detail"]
    r = client.post("/v1/feedback", json={"events": [EVENT] * 1001}, headers=w)
    assert r.status_code == 422
    r = client.post("/v1/feedback", json={"user_id": "u", "item_id": "ghost"}, headers=w)
    assert r.status_code == 422 and "events[0].item_id" in r.json()["detail"]
    r = client.post("/v1/feedback", content=b"{not json", headers=w)
    assert r.status_code == 422 and r.json()["error"] == "invalid_input"


def test_bodies_over_the_limit_get_413_before_parsing(client: TestClient) -> None:
    w = {"X-API-Key": WRITE_KEY, "content-type": "application/json"}
    big = b'{"events": [' + b'{"user_id": "u", "item_id": "m1"},' * 40_000 + b"]}"
    r = client.post("/v1/feedback", content=big, headers=w)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"

    def chunks() -> object:  # no content-length: counted while streaming
        yield b'{"item_ids": ["' + b"m" * (2 << 20)
        yield b'"]}'

    r = client.post("/v1/recommendations", content=chunks(), headers=w)  # type: ignore[arg-type]
    assert r.status_code == 413


def test_unknown_routes_and_methods_are_json_4xx(client: TestClient) -> None:
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.put("/v1/recommendations", json={})
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_without_a_snapshot_reads_say_503_and_readyz_is_not_ready(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    empty = settings.model_copy(update={"snapshot_dir": tmp_path / "none"})
    with TestClient(create_app(empty)) as client:
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "not ready"
        r = client.post("/v1/recommendations", json={"item_ids": ["m1"]})
        assert r.status_code == 503 and r.json()["error"] == "no_model"
        assert "xsmoe bootstrap" in r.json()["detail"]


def test_shutdown_ends_although_a_worker_thread_is_still_busy(
    settings: ServiceSettings,
) -> None:
    import asyncio
    import threading

    stuck = threading.Event()  # a job in the app's thread pool that does not end by itself
    closed = threading.Event()

    def serve_and_stop() -> None:
        with TestClient(create_app(settings)) as test_client:

            async def start_job() -> None:
                asyncio.get_running_loop().run_in_executor(None, stuck.wait)

            test_client.portal.call(start_job)  # type: ignore[union-attr]
        closed.set()

    thread = threading.Thread(target=serve_and_stop, daemon=True)
    thread.start()
    try:
        assert closed.wait(timeout=60), "the lifespan shutdown waited for a busy thread"
    finally:
        stuck.set()
        thread.join(timeout=10)
