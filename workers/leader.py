"""Leader lock in Redis: set-if-absent with expiry, renewed while held.

Two worker replicas are safe: one trains, the other waits and takes over when
the first stops renewing (dies or loses Redis).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid

import redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaderLock:
    def __init__(self, client: redis.Redis, key: str, name: str, ttl_ms: int) -> None:
        self.redis = client
        self.key = key
        self.token = f"{name}:{uuid.uuid4().hex[:8]}"
        self.ttl_ms = ttl_ms
        self.held = False
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        self.held = bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))
        if self.held:
            log.info("leader lock %s taken (%s)", self.key, self.token)
            self._start_renewing()
        return self.held

    def renew(self) -> bool:
        try:
            self.held = bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))
        except RedisError as exc:
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
