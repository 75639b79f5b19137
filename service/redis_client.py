"""The asyncio Redis client this replica talks through, built from XSMOE_REDIS_URL:
one server, the primary a Sentinel set names (found again after a failover), or a
Redis Cluster."""

from __future__ import annotations

from typing import Any, TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from xsmoe.common.redis_url import parse_redis_url

# What a Redis call can raise when Redis is away, failing over or misconfigured: a
# cluster client raises RedisClusterException, which is not a RedisError.
REDIS_ERRORS = (RedisError, RedisClusterException, OSError)

AsyncRedis: TypeAlias = aioredis.Redis | RedisCluster


class _Cluster(RedisCluster):
    """redis-py's asyncio cluster client (8.1) can disconnect a pooled connection that
    another task has just taken, while it connects: that task then fails with an
    AttributeError on a writer that is gone (seen under concurrent load right after
    a topology refresh). Nothing was written then, so the command is sent again; any
    other such error becomes a ConnectionError, which callers treat as Redis being
    away for a moment (503 + Retry-After), not as a bug (500)."""

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(_TORN_RETRIES + 1):
            try:
                return await super().execute_command(*args, **kwargs)
            except AttributeError as exc:
                unsent = "writelines" in str(exc) or "'write'" in str(exc)
                if not unsent or attempt == _TORN_RETRIES:
                    raise RedisConnectionError(f"cluster connection torn down: {exc}") from exc
        raise AssertionError("unreachable")


_TORN_RETRIES = 2


def connect(url: str, **options: Any) -> AsyncRedis:
    """A client for `url`; `options` (timeouts, health checks) apply to data nodes."""
    target = parse_redis_url(url)
    if target.kind == "single":
        return aioredis.from_url(url, **options)
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.kind == "cluster":
        options.pop("health_check_interval", None)
        nodes = [ClusterNode(host, port) for host, port in target.hosts]
        return _Cluster(startup_nodes=nodes, **auth, **options)
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel = Sentinel(list(target.hosts), sentinel_kwargs=timeouts, **auth, **options)
    primary: aioredis.Redis = sentinel.master_for(target.service, db=target.db)
    return primary


def is_cluster(client: AsyncRedis) -> bool:
    return isinstance(client, RedisCluster)
