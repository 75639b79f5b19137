"""Learns of new snapshots by Redis pub/sub and by polling the pointer.

The Redis pointer is authoritative: every publisher (the worker, a rollback, the
CLI) sets it. The store's own pointer (the CURRENT file, or the pointer object in
S3) is the backstop while Redis has no pointer or does not answer. Pub/sub is fast
but drops messages while reconnecting; the poll is the safety net. Both only nudge
`Serving.load`, which fetches and validates before it swaps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from xsmoe.model.snapshot_layout import POINTER, SnapshotError, check_version
from xsmoe.service.redis_client import REDIS_ERRORS, AsyncRedis
from xsmoe.service.serving import Serving, SwapFailed

log = logging.getLogger(__name__)


def raise_if_cancelled() -> None:
    """redis-py can swallow a cancellation that lands inside a blocking read and go on
    reading; the error it raises once the connection is closed must then end the
    task, not start a reconnect loop that never stops."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class SnapshotWatcher:
    def __init__(
        self, serving: Serving, client: AsyncRedis, channel: str, pointer_key: str
    ) -> None:
        self.serving = serving
        self.redis = client
        self.channel = channel
        self.pointer_key = pointer_key
        self._errors: dict[str, str] = {}  # source -> why it could not be read (logged)

    async def check(self) -> None:
        """Swap to whatever the pointer names, unless it is served or not due a retry."""
        version = await self.pointer()
        state = self.serving.current
        if version is None or (state is not None and state.version == version):
            return
        if self.serving.retry.due(version):
            with contextlib.suppress(SwapFailed):  # logged by Serving; tried again later
                await self.serving.load(version)

    async def pointer(self) -> str | None:
        """The Redis pointer, else the store's; None while neither names a version."""
        store = self.serving.store
        try:
            raw = await self.redis.get(self.pointer_key)
            self._note("Redis", None)
        except REDIS_ERRORS as exc:
            raise_if_cancelled()
            self._note("Redis", f"Redis unavailable ({exc}): following {store.url}'s pointer")
            raw = None
        try:
            if raw is not None:
                name = (raw.decode() if isinstance(raw, bytes) else str(raw)).strip()
                version: str | None = check_version(name, f"the Redis key {self.pointer_key}")
            else:
                version = await asyncio.to_thread(store.pointer)
                self._note(store.url, None)
        except SnapshotError as exc:  # names no version: keep serving, say why once
            if self.serving.failed.get(POINTER) != str(exc):
                self.serving.failed[POINTER] = str(exc)
                log.error("snapshot pointer refused, still serving what we have: %s", exc)
            return None
        except OSError as exc:  # the store is unreachable (StoreError) or the disk failed
            self._note(store.url, f"cannot read the snapshot pointer of {store.url}: {exc}")
            return None
        self.serving.failed.pop(POINTER, None)
        return version

    def _note(self, source: str, error: str | None) -> None:
        """Log a source's failure once per distinct message, and its recovery once."""
        before = self._errors.get(source)
        if error is None:
            if before is not None:
                del self._errors[source]
                log.info("%s answers again", source)
        elif before != error:
            self._errors[source] = error
            log.warning("%s", error)

    async def poll_forever(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.serving.settings.poll_seconds)

    async def listen_forever(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    backoff = 0.1
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self.check()
            except REDIS_ERRORS as exc:
                raise_if_cancelled()
                log.warning("snapshot channel lost (%s); retrying in %.1f s", exc, backoff)
            except Exception:  # a client bug must not end the listening for good
                raise_if_cancelled()
                log.exception("snapshot channel failed; retrying in %.1f s", backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
