"""Retries: what is retried, after how long, and where it stops; against a scripted
real HTTP server and against the real service with its Redis stopped."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.client.conftest import open_client
from tests.client.scripted import scripted
from tests.conftest import single_redis_only
from tests.deployment import WRITE_KEY
from tests.service.live import live_server
from xsmoe.redis_server import EmbeddedRedis, free_port
from xsmoe.service.settings import ServiceSettings
from xsmoe_client import ApiError

BUSY = {"error": "redis_unavailable", "detail": "Redis unavailable; retry shortly"}
ALIVE = {"status": "alive"}
ACCEPTED = {"accepted": 1, "duplicates": 0, "events": []}


def test_a_503_is_retried_after_its_retry_after(flavor: str) -> None:
    with (
        scripted((503, {"Retry-After": "1"}, BUSY), (200, {}, ALIVE)) as server,
        open_client(flavor, server.url) as xs,
    ):
        assert xs.health().status == "alive"
    first, second = server.seen
    assert second.at - first.at >= 0.95  # waited as told, not the 0.5 s backoff


def test_retries_stop_at_max_attempts_and_max_wait(flavor: str) -> None:
    busy = (503, {"Retry-After": "1"}, BUSY)
    with (
        scripted(busy, busy, busy) as server,
        open_client(flavor, server.url, max_attempts=2) as xs,
        pytest.raises(ApiError) as err,
    ):
        xs.get_item("m1")
    assert len(server.seen) == 2
    assert err.value.status == 503 and err.value.error == "redis_unavailable"
    assert err.value.retry_after == 1.0
    with scripted(busy, busy) as server, open_client(flavor, server.url, max_wait=0.5) as xs:
        started = time.monotonic()
        with pytest.raises(ApiError):
            xs.get_item("m1")
        assert time.monotonic() - started < 0.5  # a wait past max_wait is not begun
    assert len(server.seen) == 1


def test_feedback_is_resent_with_the_same_client_made_event_id(flavor: str) -> None:
    with (
        scripted((503, {"Retry-After": "0"}, BUSY), (202, {}, ACCEPTED)) as server,
        open_client(flavor, server.url, api_key=WRITE_KEY) as xs,
    ):
        assert xs.feedback("u1", "m1").accepted == 1
    sent = [json.loads(s.body) for s in server.seen]
    assert len(sent) == 2 and sent[0] == sent[1] and len(sent[0]["event_id"]) == 32
    # The key travels as a header, never in the URL.
    assert all(s.headers["X-API-Key"] == WRITE_KEY for s in server.seen)
    assert all(WRITE_KEY not in s.path for s in server.seen)


def test_a_create_or_upload_is_not_resent_after_a_503(flavor: str) -> None:
    busy = (503, {"Retry-After": "0"}, BUSY)
    with scripted(busy, busy, busy) as server, open_client(flavor, server.url) as xs:
        with pytest.raises(ApiError):
            xs.add_item("x1", text="toy")
        with pytest.raises(ApiError):
            xs.upload_item("x2", b"\x89PNG\r\n\x1a\n")
    assert [s.path for s in server.seen] == ["/v1/items", "/v1/items/upload"]


def test_a_proxy_page_is_an_http_error_and_a_refused_connection_is_retried(
    flavor: str,
) -> None:
    page = (502, {"Content-Type": "text/html"}, b"<h1>Bad Gateway</h1>")
    with (
        scripted(page) as server,
        open_client(flavor, server.url, max_attempts=1) as xs,
        pytest.raises(ApiError) as err,
    ):
        xs.model_info()
    assert err.value.status == 502 and err.value.error == "http_error"
    assert "Bad Gateway" in err.value.detail
    nobody = f"http://127.0.0.1:{free_port()}"
    with open_client(flavor, nobody, max_attempts=3) as xs:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectError):
            xs.add_item("x1", text="toy")  # never sent: safe to try again, even a create
        assert time.monotonic() - started >= 1.4  # 0.5 s, then 1 s


@single_redis_only()
def test_feedback_waits_out_a_redis_outage_of_the_real_service(
    flavor: str, deployment: ServiceSettings, tmp_path: Path
) -> None:
    redis = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    own = deployment.model_copy(update={"redis_url": redis.url})
    try:
        with live_server(own) as live:
            with open_client(flavor, live.url, api_key=WRITE_KEY, max_attempts=1) as xs:
                assert xs.feedback("outage-user", "m1").accepted == 1
                redis.stop()
                with pytest.raises(ApiError) as err:
                    xs.feedback("outage-user", "m2")
                assert err.value.status == 503 and err.value.retry_after == 1.0
            back = threading.Timer(1.5, redis.start)
            back.start()
            with open_client(
                flavor, live.url, api_key=WRITE_KEY, max_wait=20, max_attempts=10
            ) as xs:
                started = time.monotonic()
                done = xs.feedback("outage-user", "m2", event_id=f"outage-{flavor}")
                assert time.monotonic() - started >= 1.0
                back.join()
                assert done.accepted == 1 and done.duplicates == 0
                assert xs.feedback("outage-user", "m2", event_id=f"outage-{flavor}").duplicates == 1
    finally:
        redis.stop()
