"""XSMOE_REDIS_URL: the three shapes parse, a bad URL is refused saying what is allowed,
and a password never reaches a log line."""

from __future__ import annotations

import pytest

from xsmoe.common.redis_url import parse_redis_url, redacted
from xsmoe.common.settings import Settings


def test_the_three_shapes() -> None:
    single = parse_redis_url("redis://:pw@h:6379/2")
    assert single.kind == "single" and single.url == "redis://:pw@h:6379/2"
    s = parse_redis_url("redis+sentinel://user:p%40ss@a:26379,b:26380,[::1]:26381/main/3")
    assert s.kind == "sentinel" and s.service == "main" and s.db == 3
    assert s.hosts == (("a", 26379), ("b", 26380), ("::1", 26381))
    assert (s.username, s.password) == ("user", "p@ss")
    c = parse_redis_url("redis+cluster://n1:7000,n2:7001")
    assert c.kind == "cluster" and c.hosts == (("n1", 7000), ("n2", 7001)) and c.db == 0


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://h:1", "must start with one of"),
        ("redis+sentinel://a:1", "host:port[,host:port...]/SERVICE_NAME[/db]"),
        ("redis+sentinel://a:1/main/x", "must be a number"),
        ("redis+sentinel://a/main", "is not host:port"),
        ("redis+cluster://a:1/2", "names no database"),
        ("redis+cluster://a:1,,b:2", "is not host:port"),
    ],
)
def test_a_bad_url_says_what_is_allowed(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        parse_redis_url(url)
    assert says in str(caught.value)
    with pytest.raises(ValueError, match="redis"):  # refused by the settings at start
        Settings(redis_url=url)


def test_passwords_are_redacted() -> None:
    assert redacted("redis://:secret@h:1/0") == "redis://:***@h:1/0"
    assert "hunter2" not in redacted("redis+sentinel://u:hunter2@a:1,b:2/m")
    assert redacted("redis://h:1/0") == "redis://h:1/0"
    # a password holding @, and redis-py's password query parameter (sockets)
    assert redacted("redis://u:p@ss@h:1/0") == "redis://u:***@h:1/0"
    assert redacted("redis://h:1/0?password=pw&db=1") == "redis://h:1/0?password=***&db=1"
    assert redacted("unix:///run/redis.sock?password=pw") == "unix:///run/redis.sock?password=***"
    assert redacted("redis://user@h:1/0") == "redis://user@h:1/0"  # a user name is no secret
