"""/metrics follows Prometheus's conventions (checked on a real scrape, parsed), every
request has an id that comes back in its header and in every log line it causes."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.deployment import ADMIN_KEY, WRITE_KEY, publish_snapshot
from xsmoe.common.logs import handler, log_format, request_id
from xsmoe.redis_server import free_port
from xsmoe.service import errors
from xsmoe.service.app import create_app
from xsmoe.service.request_id import RequestIdMiddleware
from xsmoe.service.server import server_config
from xsmoe.service.settings import ServiceSettings

TYPES = {
    "xsmoe_request_seconds": "histogram",
    "xsmoe_version_requests": "counter",
    "xsmoe_fallback": "counter",
    "xsmoe_feedback_events": "counter",
    "xsmoe_catalog_changes": "counter",
    "xsmoe_swaps": "counter",
    "xsmoe_swap_seconds": "histogram",
    "xsmoe_user_vector_cache_hits": "counter",
    "xsmoe_user_vector_cache_misses": "counter",
    "xsmoe_user_vector_batches": "counter",
    "xsmoe_index_items": "gauge",
    "xsmoe_model_info": "gauge",
    "xsmoe_online_hr_at_10": "gauge",
    "xsmoe_online_ndcg_at_10": "gauge",
    "xsmoe_online_scored_clicks": "gauge",
    "process_cpu_seconds": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "python_info": "gauge",
    "python_gc_collections": "counter",
}


def _scrape(client: TestClient) -> dict[str, Metric]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def _value(families: dict[str, Metric], sample: str, **labels: str) -> float:
    family = families[sample.removesuffix("_total").removesuffix("_count")]
    found = [s.value for s in family.samples if s.name == sample and s.labels == labels]
    assert len(found) == 1, (sample, labels, family.samples)
    return found[0]


def test_metrics_are_typed_named_and_labelled_by_prometheus_conventions(
    client: TestClient,
) -> None:
    client.post("/v1/recommendations", json={"item_ids": ["m1"]})
    client.get("/v1/users/u9/recommendations")  # no history: popularity
    client.post(
        "/v1/feedback", json={"user_id": "u9", "item_id": "m1"}, headers={"X-API-Key": WRITE_KEY}
    )
    families = _scrape(client)
    kinds = {name: f.type for name, f in families.items()}
    assert {n: kinds.get(n) for n in TYPES} == TYPES
    for gone in ("xsmoe_model_version", "xsmoe_user_vectors", "xsmoe_online_metric"):
        assert gone not in families  # a number for a version; counts mixed with ratios
    for family in families.values():
        if family.type == "counter":  # every counter sample is a _total (or its _created)
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
    assert [(s.labels, s.value) for s in families["xsmoe_model_info"].samples] == [
        ({"version": "v000001"}, 1.0)
    ]
    route = {"method": "POST", "route": "/v1/recommendations", "status": "200"}
    assert _value(families, "xsmoe_request_seconds_count", **route) == 1
    assert "/v1/users/{user_id}/recommendations" in {
        s.labels.get("route") for s in families["xsmoe_request_seconds"].samples
    }  # templates, not raw paths
    per_version = {"version": "v000001", "kind": "recommend", "status_class": "2xx"}
    assert _value(families, "xsmoe_version_requests_total", **per_version) == 2
    assert _value(families, "xsmoe_fallback_total", version="v000001") == 1
    click = {"outcome": "accepted", "type": "click"}
    assert _value(families, "xsmoe_feedback_events_total", **click) == 1
    assert _value(families, "xsmoe_user_vector_cache_misses_total") >= 1
    assert _value(families, "xsmoe_user_vector_batches_total") >= 1
    assert _value(families, "xsmoe_index_items") == 40
    assert _value(families, "xsmoe_swap_seconds_count") == 1
    assert _value(families, "xsmoe_online_scored_clicks") == 0  # no window scored yet
    assert _value(families, "process_resident_memory_bytes") > 10e6


def test_a_request_id_is_kept_when_sane_made_when_not_and_always_echoed(
    client: TestClient,
) -> None:
    given = "trace-42.a_b:c"
    assert client.get("/healthz", headers={"X-Request-ID": given}).headers["x-request-id"] == given
    made = set()
    for bad in ("has space", "x" * 129, "", '"quoted"', "<script>", None):
        headers = {"X-Request-ID": bad} if bad is not None else {}
        rid = client.get("/healthz", headers=headers).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", rid) and rid != bad
        made.add(rid)
    assert len(made) == 6  # a fresh one each time
    for r in (
        client.get("/v1/items/no-such-item", headers={"X-Request-ID": "e1"}),  # 404
        client.post("/v1/recommendations", json={"k": -1}, headers={"X-Request-ID": "e2"}),
        client.post("/v1/feedback", json={}, headers={"X-Request-ID": "e3"}),  # 401
    ):
        assert r.status_code >= 400 and r.headers["x-request-id"] in ("e1", "e2", "e3")


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The root logger writes JSON lines here (as XSMOE_LOG_FORMAT=json sets up)."""
    stream = io.StringIO()
    out = handler("json", stream)
    root, client = logging.getLogger(), logging.getLogger("httpx")
    levels = root.level, client.level
    # uvicorn turns access-log propagation off process-wide whenever a server starts
    # without an access log (every other live server of the suite): on again here, as
    # in `xsmoe serve --access-log`, which runs one server per process.
    access = logging.getLogger("uvicorn.access")
    propagate = access.propagate
    access.propagate = True
    root.addHandler(out)
    root.setLevel(logging.INFO)
    client.setLevel(logging.WARNING)  # the test's own client, quiet as setup_logging makes it
    yield stream
    root.removeHandler(out)
    root.setLevel(levels[0])
    client.setLevel(levels[1])
    access.propagate = propagate


def test_json_logs_carry_the_request_id_on_access_and_app_lines(
    settings: ServiceSettings, json_log: io.StringIO
) -> None:
    version = publish_snapshot(settings.snapshots, settings, seed=1, make_current=False)
    port = free_port()
    config = server_config(
        create_app(settings), settings.api, host="127.0.0.1", port=port, access_log=True
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        url = f"http://127.0.0.1:{port}"
        r = httpx.post(
            f"{url}/v1/admin/rollback",
            json={"version": version},
            headers={"X-API-Key": ADMIN_KEY, "X-Request-ID": "ops-7"},
            timeout=30,
        )
        assert r.status_code == 200 and r.headers["x-request-id"] == "ops-7"
        r = httpx.get(f"{url}/dashboard", params={"key": ADMIN_KEY}, timeout=10)
        assert r.status_code == 400
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    ours = [line for line in lines if line.get("request_id") == "ops-7"]
    access = [line for line in ours if line["logger"] == "uvicorn.access"]
    assert len(access) == 1
    assert access[0]["method"] == "POST" and access[0]["path"] == "/v1/admin/rollback"
    assert access[0]["status"] == 200 and access[0]["level"] == "INFO"
    app_lines = {line["msg"] for line in ours if line["logger"].startswith("xsmoe.")}
    assert f"rolled back from v000001 to {version}" in app_lines
    assert any(m.startswith(f"serving {version} (was v000001)") for m in app_lines)
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"]) for line in lines
    )
    # a key given in a URL is refused, and its value reaches no log line
    assert ADMIN_KEY not in json_log.getvalue()
    refused = [line for line in lines if line.get("path", "").startswith("/dashboard?")]
    assert refused and refused[0]["path"] == "/dashboard?key=***"
    assert all(line.get("request_id") for line in lines if line["logger"] == "uvicorn.access")


def test_the_log_format_is_text_or_json_and_nothing_else() -> None:
    assert log_format("JSON") == "json" and log_format("text") == "text"
    with pytest.raises(ValueError, match="XSMOE_LOG_FORMAT='xml': use one of text, json"):
        log_format("xml")
    stream = io.StringIO()
    logger = logging.getLogger("xsmoe.test.text")
    logger.addHandler(handler("text", stream))
    logger.warning("plain line")
    token = request_id.set("r-1")
    logger.warning("in a request")
    request_id.reset(token)
    logger.handlers.clear()
    plain, within = stream.getvalue().splitlines()
    assert plain.endswith("WARNING xsmoe.test.text: plain line")
    assert within.endswith("WARNING xsmoe.test.text: in a request [request r-1]")


def test_openapi_documents_every_route_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/recommendations",
        "/v1/users/{user_id}/recommendations",
        "/v1/feedback",
        "/v1/items",
        "/v1/items/upload",
        "/v1/items/{item_id}",
        "/v1/model",
        "/v1/admin/rollback",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    schemas = spec["components"]["schemas"]
    assert schemas["RecommendRequest"]["examples"]
    assert schemas["ItemCreate"]["examples"]
    feedback_examples = paths["/v1/feedback"]["post"]["requestBody"]["content"]["application/json"]
    assert set(feedback_examples["examples"]) == {"one event", "a batch"}
    assert "APIKeyHeader" in spec["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200


def test_readyz_names_the_version(client: TestClient) -> None:
    assert client.get("/readyz").json() == {
        "status": "ready",
        "version": "v000001",
        "redis": "ok",
    }


def test_an_unhandled_error_answers_500_with_the_id_and_logs_it_with_the_id() -> None:
    """A real app with the real middleware and error handlers, and a route that fails."""
    app = FastAPI()
    errors.install(app)

    @app.get("/boom", include_in_schema=False)  # a test's route: not the API's document
    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_middleware(RequestIdMiddleware)
    stream = io.StringIO()
    out = handler("json", stream)
    logger = logging.getLogger("xsmoe.service.errors")
    logger.addHandler(out)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            r = client.get("/boom", headers={"X-Request-ID": "bug-1"})
    finally:
        logger.removeHandler(out)
    assert r.status_code == 500 and r.headers["x-request-id"] == "bug-1"
    assert r.json() == {"error": "internal", "detail": "unexpected server error; see the logs"}
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["request_id"] == "bug-1" and line["level"] == "ERROR"
    assert line["msg"] == "unhandled error on GET /boom" and "RuntimeError: a bug" in line["exc"]
