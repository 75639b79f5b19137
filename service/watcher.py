"""Learns of new snapshots by Redis pub/sub and by polling the CURRENT pointer.

Pub/sub is fast but drops messages while reconnecting; the poll is the safety
net. Both only nudge `Serving.load`, which validates before it swaps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from model.snapshot import POINTER, SnapshotError, current_version
from service.redis_client import REDIS_ERRORS, AsyncRedis
from service.serving import Serving, SwapFailed

log = logging.getLogger(__name__)


def raise_if_cancelled() -> None:
    """redis-py can swallow a cancellation that lands inside a blocking read and go on
    reading; the error it raises once the connection is closed must then end the
    task, not start a reconnect loop that never stops."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class SnapshotWatcher:
    def __init__(self, serving: Serving, client: AsyncRedis, channel: str) -> None:
        self.serving = serving
        self.redis = client
        self.channel = channel

    async def check(self) -> None:
        """Swap to whatever the pointer names, unless it is served or was refused."""
        try:
            version = current_version(self.serving.root)
        except SnapshotError as exc:  # names no version: keep serving, say why once
            if self.serving.failed.get(POINTER) != str(exc):
                self.serving.failed[POINTER] = str(exc)
                log.error("snapshot pointer refused, still serving what we have: %s", exc)
            return
        except OSError as exc:
            log.warning("cannot read the snapshot pointer in %s: %s", self.serving.root, exc)
            return
        self.serving.failed.pop(POINTER, None)
        state = self.serving.current
        if version is None or version in self.serving.failed:
            return
        if state is None or state.version != version:
            with contextlib.suppress(SwapFailed):  # logged by Serving; polled again later
                await self.serving.load(version)

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
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
