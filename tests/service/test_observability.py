from __future__ import annotations

from fastapi.testclient import TestClient

from tests.deployment import WRITE_KEY


def test_metrics_count_routes_feedback_and_state(client: TestClient) -> None:
    client.post("/v1/recommendations", json={"item_ids": ["m1"]})
    client.get("/v1/users/u9/recommendations")
    client.post(
        "/v1/feedback", json={"user_id": "u9", "item_id": "m1"}, headers={"X-API-Key": WRITE_KEY}
    )
    text = client.get("/metrics").text
    assert 'route="/v1/users/{user_id}/recommendations"' in text  # templates, not raw paths
    assert (
        'xsmoe_request_seconds_count{method="POST",route="/v1/recommendations",status="200"} 1.0'
        in text
    )
    assert 'xsmoe_feedback_events_total{outcome="accepted",type="click"} 1.0' in text
    assert "xsmoe_fallback_total 1.0" in text  # u9 had no history on the GET
    assert "xsmoe_index_items 40.0" in text and "xsmoe_model_version 1.0" in text
    assert "xsmoe_swap_seconds_count 1.0" in text


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
