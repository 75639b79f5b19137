"""Leader lock in Redis: set-if-absent with expiry, renewed while held.

Two worker replicas are safe: one trains, the other waits and takes over when
the first stops renewing (dies or loses Redis). A restarted worker with the same
consumer name takes its own lock back at once instead of waiting for it to
expire; the token it holds then fences the pointer it publishes: a process that
lost the lock can no longer move it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid

from redis.exceptions import RedisError

from xsmoe.workers.redis_client import REDIS_ERRORS, SyncRedis

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# Free, or held by an earlier process of this same consumer name: take it.
_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] and string.sub(cur, 1, string.len(ARGV[3])) ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if cur and cur ~= ARGV[1] then return 2 end
return 1
"""
# KEYS: lock, pointer. ARGV: token, version, channel.
_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaderLock:
    def __init__(self, client: SyncRedis, key: str, name: str, ttl_ms: int) -> None:
        self.redis = client
        self.key = key
        self.name = name
        self.token = f"{name}:{uuid.uuid4().hex[:8]}"
        self.ttl_ms = ttl_ms
        self.held = False
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._acquire = client.register_script(_ACQUIRE)
        self._publish = client.register_script(_PUBLISH)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        got = int(self._acquire(keys=[self.key], args=[self.token, self.ttl_ms, f"{self.name}:"]))
        self.held = got > 0
        if self.held:
            how = "taken back from an earlier process of this name" if got == 2 else "taken"
            log.info("leader lock %s %s (%s)", self.key, how, self.token)
            self._start_renewing()
        return self.held

    def publish(self, pointer: str, channel: str, version: str) -> bool:
        """Set the pointer and announce it, only while this process holds the lock."""
        done = bool(self._publish(keys=[self.key, pointer], args=[self.token, version, channel]))
        if not done:
            self.held = False
            log.warning("not publishing %s: the leader lock is no longer ours", version)
        return done

    def renew(self) -> bool:
        try:
            self.held = bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))
        except REDIS_ERRORS as exc:
            log.warning("leader lock not renewed: %s", exc)
            self.held = False
        return self.held

    def release(self) -> None:
        self._stop.set()
        if self.held:
            with contextlib.suppress(RedisError):
                self._release(keys=[self.key], args=[self.token])
        self.held = False

    def _start_renewing(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.ttl_ms / 3000):
                if not self.renew():
                    log.warning("leader lock lost")
                    return

        self._thread = threading.Thread(target=loop, name="leader-lock", daemon=True)
        self._thread.start()
