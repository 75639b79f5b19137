"""Where Redis is, read from one URL: a single server, a Sentinel set or a Cluster.

- `redis://[user:pass@]host:port/db` (or `rediss://`, `unix://`): one server.
- `redis+sentinel://[user:pass@]host:port[,host:port...]/SERVICE[/db]`: the primary
  that the sentinels name for SERVICE, asked again after every failover.
- `redis+cluster://[user:pass@]host:port[,host:port...]`: a Redis Cluster (db 0).

The credentials are those of the data nodes; sentinels are asked without them.
The clients themselves are built in service/ (asyncio) and workers/ (sync).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

Kind = Literal["single", "sentinel", "cluster"]
_SCHEMES: dict[str, Kind] = {
    "redis": "single",
    "rediss": "single",
    "unix": "single",
    "redis+sentinel": "sentinel",
    "redis+cluster": "cluster",
}
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$")


@dataclass(frozen=True)
class RedisTarget:
    kind: Kind
    url: str  # as given (a single server's URL goes to redis-py unchanged)
    hosts: tuple[tuple[str, int], ...] = ()  # sentinels or cluster seed nodes
    service: str = ""  # the sentinels' name of the primary
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_redis_url(url: str) -> RedisTarget:
    """The target a URL names; ValueError saying what is wrong and what is allowed."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise ValueError(
            f"redis URL must start with one of {', '.join(s + '://' for s in _SCHEMES)}"
        )
    kind = _SCHEMES[scheme.lower()]
    if kind == "single":
        return RedisTarget("single", url)
    auth, at, location = rest.rpartition("@")
    username, password = None, None
    if at:
        user, colon, secret = auth.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    netloc, _, path = location.partition("/")
    hosts = tuple(_host(h, url) for h in netloc.split(","))
    parts = [p for p in path.split("?")[0].split("/") if p]
    if kind == "cluster":
        if parts and parts != ["0"]:
            raise ValueError("a redis+cluster:// URL names no database (a cluster has only db 0)")
        return RedisTarget("cluster", url, hosts, username=username, password=password)
    if not parts or len(parts) > 2:
        raise ValueError("a redis+sentinel:// URL is host:port[,host:port...]/SERVICE_NAME[/db]")
    if len(parts) == 2 and not parts[1].isdigit():
        raise ValueError(
            f"the database in a redis+sentinel:// URL must be a number, not {parts[1]!r}"
        )
    db = int(parts[1]) if len(parts) == 2 else 0
    return RedisTarget("sentinel", url, hosts, unquote(parts[0]), db, username, password)


def _host(text: str, url: str) -> tuple[str, int]:
    match = _HOST.match(text.strip())
    if not match:
        raise ValueError(f"{redacted(url)}: {text!r} is not host:port")
    return match.group(1).strip("[]"), int(match.group(2))


# userinfo runs to the LAST @ before the path (a password may hold @ itself); redis-py
# also takes a password as a query parameter (`?password=...`, common for sockets).
_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)([^/?#]*)@", re.IGNORECASE)
_QUERY_SECRET = re.compile(r"([?&](?:password|pass|pwd)=)[^&#]*", re.IGNORECASE)


def redacted(url: str) -> str:
    """The URL with any password replaced, fit for logs, files and error messages."""
    match = _USERINFO.match(url)
    if match:
        user, colon, _ = match.group(2).partition(":")
        userinfo = f"{user}:***" if colon else user
        url = f"{match.group(1)}{userinfo}@{url[match.end() :]}"
    return _QUERY_SECRET.sub(r"\1***", url)


def has_secret(url: str) -> bool:
    """Whether the URL carries a password (in its userinfo or its query)."""
    return redacted(url) != url
