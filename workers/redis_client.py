"""The sync Redis client of the worker and the CLI, built from XSMOE_REDIS_URL: one
server, the primary a Sentinel set names (found again after a failover), or a
Redis Cluster."""

from __future__ import annotations

from typing import Any, TypeAlias

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException, RedisError
from redis.sentinel import Sentinel

from xsmoe.common.redis_url import parse_redis_url

# What a Redis call can raise when Redis is away, failing over or misconfigured: a
# cluster client raises RedisClusterException, which is not a RedisError.
REDIS_ERRORS = (RedisError, RedisClusterException, OSError)

SyncRedis: TypeAlias = redis.Redis | RedisCluster


def connect(url: str, **options: Any) -> SyncRedis:
    """A client for `url`; `options` (timeouts) apply to data nodes."""
    target = parse_redis_url(url)
    if target.kind == "single":
        return redis.Redis.from_url(url, **options)
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in target.hosts]
        return RedisCluster(startup_nodes=nodes, **auth, **options)
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel = Sentinel(list(target.hosts), sentinel_kwargs=timeouts, **auth, **options)
    primary: redis.Redis = sentinel.master_for(target.service, db=target.db)
    return primary
