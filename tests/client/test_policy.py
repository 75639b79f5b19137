"""The client's pure parts: Retry-After parsing, the retry bounds, path segments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from xsmoe_client.call import segment
from xsmoe_client.retry import RetryPolicy, retry_after


def _busy(value: str | None, status: int = 503) -> httpx.Response:
    headers = {} if value is None else {"Retry-After": value}
    return httpx.Response(status, headers=headers)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after(_busy("1")) == 1.0
    assert retry_after(_busy("2.5")) == 2.5
    assert retry_after(_busy("-3")) == 0.0
    assert retry_after(_busy(None)) is None
    assert retry_after(_busy("soon")) is None
    assert retry_after(_busy("inf")) is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after(_busy(later)) or 0) <= 30


def test_the_bounds_count_sends_and_seconds_waited() -> None:
    attempts = RetryPolicy(max_attempts=3, max_wait=2.5).start(idempotent=True)
    assert attempts.wait_before_retry(_busy("1")) == 1.0
    assert attempts.wait_before_retry(_busy(None)) == 1.0  # no Retry-After: 0.5 s doubling
    assert attempts.wait_before_retry(_busy("0")) is None  # the third send was the last
    thrifty = RetryPolicy(max_attempts=10, max_wait=2.5).start(idempotent=True)
    assert thrifty.wait_before_retry(_busy("2")) == 2.0
    assert thrifty.wait_before_retry(_busy("1")) is None  # 3 s in all would pass max_wait
    assert RetryPolicy().start(idempotent=True).wait_before_retry(_busy("1", 500)) is None
    assert RetryPolicy().start(idempotent=False).wait_before_retry(_busy("1")) is None
    answer = RetryPolicy().start(idempotent=True, answers=frozenset({503}))
    assert answer.wait_before_retry(_busy("1")) is None  # a 503 that is the answer


def test_transport_errors_are_retried_only_when_nothing_can_have_taken_effect() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/v1/items")
    refused = httpx.ConnectError("refused", request=request)
    cut = httpx.ReadError("reset", request=request)
    assert RetryPolicy().start(idempotent=False).wait_before_retry(refused) == 0.5
    assert RetryPolicy().start(idempotent=False).wait_before_retry(cut) is None
    assert RetryPolicy().start(idempotent=True).wait_before_retry(cut) == 0.5


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="max_wait"):
        RetryPolicy(max_wait=float("nan"))


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a:b@c+d", "a%3Ab%40c%2Bd"),
        ("m1", "m1"),
        ("x.y_z~-", "x.y_z~-"),
        ("a/b", "a%2Fb"),
        ("x?y#z", "x%3Fy%23z"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("é", "%C3%A9"),
    ],
)
def test_an_id_is_always_one_path_segment(value: str, encoded: str) -> None:
    assert segment(value) == encoded
