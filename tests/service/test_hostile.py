"""Hostile clients: pixel bombs, huge or slow headers, slow bodies, disconnects, odd ids.
Each gets a clear refusal, and the server keeps serving everyone else."""

from __future__ import annotations

import base64
import json
import socket
import struct
import time
import zlib
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.deployment import WRITE_KEY, publish_snapshot
from tests.service.live import live_server, read_response
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings

W = {"X-API-Key": WRITE_KEY}


def _with_api(settings: ServiceSettings, **api: object) -> ServiceSettings:
    return settings.model_copy(update={"api": settings.api.model_copy(update=api)})


def _pixel_bomb(width: int = 12_000, height: int = 12_000) -> bytes:
    """A 1-bit grayscale PNG of all-black rows: a few KB on the wire, width x height
    pixels (432 MB as RGB) once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_a_pixel_bomb_is_refused_from_its_header(settings: ServiceSettings) -> None:
    bomb = _pixel_bomb()
    assert len(bomb) < 64 << 10  # far under every byte limit: only the pixel count catches it
    publish_snapshot(settings.snapshots, settings, images=True)  # a model that reads images
    with TestClient(create_app(settings)) as client:
        body = {"item_id": "bomb", "image_base64": base64.b64encode(bomb).decode()}
        r = client.post("/v1/items", json=body, headers=W)
        assert r.status_code == 413, r.text
        out = r.json()
        assert out["error"] == "payload_too_large"
        assert out["fields"][0]["field"] == "image_base64"
        assert "144,000,000 pixels; the limit is 25,000,000" in out["detail"]
        r = client.post(
            "/v1/items/upload",
            data={"item_id": "bomb"},
            files={"image": ("bomb.png", bomb, "image/png")},
            headers=W,
        )
        assert r.status_code == 413 and r.json()["fields"][0]["field"] == "image"
        assert client.get("/v1/items/bomb").status_code == 404  # nothing was stored


def _send_all(sock: socket.socket, data: bytes, piece: int = 16 << 10) -> bool:
    """Send until done or the server stops listening; whether it all went."""
    try:
        for start in range(0, len(data), piece):
            sock.sendall(data[start : start + piece])
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def test_huge_or_many_headers_are_refused_and_the_server_lives_on(
    settings: ServiceSettings,
) -> None:
    with live_server(settings) as server:
        huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (4 << 20) + b"\r\n\r\n"
        with server.connect() as sock:
            _send_all(sock, huge)
            answer = read_response(sock)
        # 431, or (when the server closed with our bytes still unread) a reset: never a 200
        assert answer.startswith(b"HTTP/1.1 431") or answer == b"", answer[:80]
        many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        many += b"".join(b"X-H%d: 1\r\n" % n for n in range(300)) + b"\r\n"
        with server.connect() as sock:
            sock.sendall(many)
            answer = read_response(sock)
        status, _, rest = answer.partition(b"\r\n")
        assert status == b"HTTP/1.1 431 Request Header Fields Too Large", answer[:80]
        body = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert body["error"] == "headers_too_large" and "limit is 100" in body["detail"]
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_slow_headers_and_slow_bodies_get_408_and_the_connection_closes(
    settings: ServiceSettings,
) -> None:
    quick = _with_api(settings, body_timeout_seconds=0.5, header_timeout_seconds=0.5)
    with live_server(quick) as server:
        with server.connect() as sock:  # 3 bytes of a 1000-byte body, then nothing
            sock.sendall(
                b"POST /v1/feedback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"X-API-Key: " + WRITE_KEY.encode() + b'\r\nContent-Length: 1000\r\n\r\n{"u'
            )
            answer = read_response(sock)  # the server closes: the read ends before its timeout
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        body = json.loads(answer.partition(b"\r\n\r\n")[2])
        assert body["error"] == "request_timeout" and "request body" in body["detail"]
        with server.connect() as sock:  # half a request line
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
            answer = read_response(sock)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        with server.connect() as sock:  # connects and says nothing: closed, no answer
            assert read_response(sock) == b""
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def _metric_lines(url: str) -> list[str]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return [line for line in text.splitlines() if line.startswith("xsmoe_request_seconds_count")]


def test_a_client_that_disconnects_is_counted_as_499_not_500(settings: ServiceSettings) -> None:
    with live_server(settings) as server:
        with server.connect() as sock:  # a body cut short by the client going away
            sock.sendall(
                b"POST /v1/feedback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"u'
            )
        deadline = time.monotonic() + 10
        while not any('status="499"' in line for line in _metric_lines(server.url)):
            assert time.monotonic() < deadline, _metric_lines(server.url)
            time.sleep(0.05)
        lines = _metric_lines(server.url)
        assert not any('status="500"' in line for line in lines), lines


@pytest.mark.parametrize("bad", ["a/b", "a b", "..", "é"])
def test_ids_outside_the_alphabet_are_refused_naming_the_field(
    client: TestClient, bad: str
) -> None:
    r = client.post("/v1/feedback", json={"user_id": bad, "item_id": "m1"}, headers=W)
    assert r.status_code == 422 and r.json()["fields"][0]["field"].endswith(".user_id")
    r = client.post("/v1/items", json={"item_id": bad, "text": "toy"}, headers=W)
    assert r.status_code == 422
    out = r.json()
    assert out["fields"][0]["field"] == "body.item_id"
    assert "A-Z a-z 0-9 . _ : @ ~ + -" in out["detail"]
    if bad == "..":
        return  # as a path segment, clients resolve it away before sending: why it is refused
    r = client.get(f"/v1/items/{quote(bad, safe='')}")
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "path.item_id"
    r = client.delete(f"/v1/items/{quote(bad, safe='')}", headers=W)
    assert r.status_code == 422
    r = client.get(f"/v1/users/{quote(bad, safe='')}/recommendations")
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "path.user_id"


def test_every_allowed_id_can_be_added_read_and_deleted(client: TestClient) -> None:
    for item_id in ("sku:A-1_b.c~2", "a.b+c@x.org", "+4930123"):
        r = client.post("/v1/items", json={"item_id": item_id, "text": "toy story"}, headers=W)
        assert r.status_code == 201, r.text
        path = f"/v1/items/{quote(item_id, safe='')}"  # however a client encodes it
        assert client.get(path).json()["item_id"] == item_id
        assert client.get(f"/v1/items/{item_id}").json()["item_id"] == item_id
        assert client.delete(path, headers=W).status_code == 200
        assert client.get(path).status_code == 404
    assert client.get("/v1/items/%6D1").json()["item_id"] == "m1"  # an encoded plain id
