"""The OpenAPI document: stable operation ids, the real error body everywhere, the
statuses each route really answers, and a recorder (openapi_truth) that notices
an answer the document does not list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from tests.service.openapi_truth import KNOWN_GAPS, Recorder, documented
from xsmoe.service.app import create_app
from xsmoe.service.openapi import ErrorBody, api_routes
from xsmoe.service.settings import ServiceSettings

Operation = tuple[str, str, dict[str, Any]]  # path, method, operation


@pytest.fixture
def app(settings: ServiceSettings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def doc(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(doc: dict[str, Any]) -> Iterator[Operation]:
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def test_operation_ids_are_the_route_functions_names(app: FastAPI, doc: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    names = {(r.path_format, m.lower()): r.operation_id or r.name for r in api_routes(app)
             for m in r.methods}  # fmt: skip
    for path, method, op in operations(doc):
        assert op["operationId"] == names[path, method]
        assert "v1" not in op["operationId"].split("_"), op["operationId"]  # no path in it
    by_path = {(p, m): op["operationId"] for p, m, op in operations(doc)}
    assert by_path["/v1/recommendations", "post"] == "post_recommendations"
    assert by_path["/v1/feedback", "post"] == "post_feedback"
    assert by_path["/v1/admin/rollback", "post"] == "rollback"


def test_fastapis_validation_body_is_replaced_by_the_real_one(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    assert "HTTPValidationError" not in text and '"ValidationError"' not in text
    for path, method, op in operations(doc):
        if "parameters" in op or "requestBody" in op:
            schema = op["responses"]["422"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)


def test_every_error_is_the_error_body_with_real_examples(doc: dict[str, Any]) -> None:
    for path, method, op in operations(doc):
        for status, response in op["responses"].items():
            code = int(status) if status.isdigit() else 0
            if not (code == 303 or code >= 400):
                continue
            media = response["content"]["application/json"]
            if (path, status) == ("/readyz", "503"):  # a probe's body, ready or not
                assert media["schema"] == {"$ref": "#/components/schemas/Readiness"}
            else:
                assert media["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
                for example in media["examples"].values():
                    ErrorBody.model_validate(example["value"], strict=True)
            if status == "503":
                assert "Retry-After" in response["headers"], (method, path)
            if status == "303":
                assert "Location" in response["headers"], (method, path)


# Exact for the routes this module's owners keep; at least these for the others.
EXACT = {
    ("/v1/feedback", "post"): {"202", "400", "401", "403", "408", "413", "422", "500", "503"},
    ("/v1/admin/rollback", "post"): {
        *("200", "400", "401", "403", "404", "408", "409", "413", "422", "500", "503"),
    },
    ("/healthz", "get"): {"200", "500"},
    ("/readyz", "get"): {"200", "500", "503"},
    ("/metrics", "get"): {"200", "500"},
}
AT_LEAST = {
    ("/v1/recommendations", "post"): {"400", "401", "403", "408", "413", "422", "500", "503"},
    ("/v1/users/{user_id}/recommendations", "get"): {"401", "403", "422", "500", "503"},
    ("/v1/model", "get"): {"401", "403", "500", "503"},
    ("/v1/items", "post"): {"400", "401", "403", "408", "413", "422", "500", "503"},
    ("/v1/items/{item_id}", "get"): {"401", "403", "422", "500", "503"},
    ("/dashboard", "get"): {"303", "400", "401", "403", "500", "503"},
}


def test_each_route_documents_the_statuses_it_answers(doc: dict[str, Any]) -> None:
    for (path, method), statuses in EXACT.items():
        assert set(doc["paths"][path][method]["responses"]) == statuses, (method, path)
    for (path, method), statuses in AT_LEAST.items():
        assert statuses <= set(doc["paths"][path][method]["responses"]), (method, path)


def test_examples_for_request_and_response_bodies(doc: dict[str, Any]) -> None:
    rollback = doc["paths"]["/v1/admin/rollback"]["post"]
    assert rollback["requestBody"]["content"]["application/json"]["examples"]
    assert rollback["responses"]["200"]["content"]["application/json"]["example"]
    errors = rollback["responses"]["409"]["content"]["application/json"]["examples"]
    assert all(e["value"]["fields"][0]["field"] == "version" for e in errors.values())
    feedback = doc["paths"]["/v1/feedback"]["post"]["responses"]["202"]
    assert feedback["content"]["application/json"]["example"]["accepted"] == 1


def test_the_recorder_notices_an_answer_the_document_lacks(response_recorder: Recorder) -> None:
    app = FastAPI()

    @app.get("/pots/{pot_id}")
    async def brew(pot_id: int) -> JSONResponse:
        return JSONResponse({"error": "teapot"}, 418)

    @app.get("/tea", responses={418: {"description": "short and stout"}})
    async def tea() -> JSONResponse:
        return JSONResponse({"error": "teapot"}, 418)

    with TestClient(app) as client:
        assert client.get("/pots/1").status_code == 418
        assert client.get("/pots/one").status_code == 422  # documented by FastAPI
        assert client.get("/tea").status_code == 418
        assert client.get("/nowhere").status_code == 404  # no route: not checked
        assert client.post("/tea").status_code == 405  # no such method: not checked
    assert response_recorder.undocumented() == [("GET", "/pots/{pot_id}", 418)]


def test_known_gaps_are_still_gaps(doc: dict[str, Any]) -> None:
    """An entry whose route now declares its status (or is gone) must leave the list."""
    stale = [
        gap for gap in sorted(KNOWN_GAPS) if gap[1] not in doc["paths"] or documented(doc, *gap)
    ]
    assert not stale, f"remove from KNOWN_GAPS in tests/service/openapi_truth.py: {stale}"
