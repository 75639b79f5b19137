"""Redis key names: the contract between the service and the workers.

Every key starts with the deployment's prefix (XSMOE_REDIS_PREFIX), so several
deployments, or several tests, can share one Redis server.

Keys carry a Redis Cluster hash tag (`{...}`), so every multi-key script touches
one slot: a user's keys, their feedback stream and its dedup markers share the
user's shard tag `{sN}` (N = crc32(user) % shards); the catalog is under `{cat}`;
the worker's lock, the snapshot pointer and the online metrics under `{ctl}`.
On a single server or a Sentinel set the tags change nothing but the names.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "xsmoe"
    shards: int = 1

    # -- per shard: feedback and user state -------------------------------------------
    def shard(self, user_id: str) -> int:
        """The shard of a user (stable across processes and restarts)."""
        return zlib.crc32(user_id.encode()) % self.shards if self.shards > 1 else 0

    def _s(self, shard: int) -> str:
        return f"{self.prefix}:{{s{shard}}}"

    def stream(self, shard: int) -> str:
        """Stream of accepted feedback events of one shard (the worker's input)."""
        return f"{self._s(shard)}:feedback"

    @property
    def streams(self) -> list[str]:
        return [self.stream(s) for s in range(self.shards)]

    @property
    def feedback(self) -> str:
        """The first shard's stream (the only one when there is a single shard)."""
        return self.stream(0)

    def event(self, event_id: str, user_id: str) -> str:
        """Idempotency marker of one event id -> its stream id (in the user's shard:
        a retry carries the same user)."""
        return f"{self._s(self.shard(user_id))}:evt:{event_id}"

    def history(self, user_id: str) -> str:
        """List of a user's positive item ids, newest last (capped)."""
        return f"{self._s(self.shard(user_id))}:hist:{user_id}"

    def disliked(self, user_id: str) -> str:
        """Set of items a user disliked: never recommended to them again."""
        return f"{self._s(self.shard(user_id))}:neg:{user_id}"

    def context(self, user_id: str) -> str:
        """List of a user's items the worker has trained on (context for later windows)."""
        return f"{self._s(self.shard(user_id))}:worker:ctx:{user_id}"

    def popular_of(self, shard: int) -> str:
        """Sorted set: positive feedback count per item, of one shard's users."""
        return f"{self._s(shard)}:popular"

    @property
    def popular_keys(self) -> list[str]:
        return [self.popular_of(s) for s in range(self.shards)]

    # -- control: the worker's lock, the snapshot pointer, metrics --------------------
    @property
    def _ctl(self) -> str:
        return f"{self.prefix}:{{ctl}}"

    @property
    def dead_letter(self) -> str:
        """Stream of events the worker could not train on (malformed or poison)."""
        return f"{self._ctl}:feedback:dead"

    @property
    def leader(self) -> str:
        """The training leader's lock (set-if-absent with expiry)."""
        return f"{self._ctl}:worker:leader"

    @property
    def worker_status(self) -> str:
        """Hash the training leader refreshes every few seconds (with a TTL): window
        fill, next close, last window's outcome (the dashboard reads it)."""
        return f"{self._ctl}:worker:status"

    @property
    def model_events(self) -> str:
        """Capped stream of expert changes (pruning, expansion) per trained candidate."""
        return f"{self._ctl}:model:events"

    @property
    def online(self) -> str:
        """Hash of prequential metrics per serving version: `<version>|n`, `|hits`, `|ndcg`."""
        return f"{self._ctl}:online"

    @property
    def snapshot_channel(self) -> str:
        """Pub/sub channel announcing a new current snapshot version."""
        return f"{self.prefix}:snapshots"

    @property
    def snapshot_pointer(self) -> str:
        """The current snapshot version (mirror of the CURRENT file)."""
        return f"{self._ctl}:snapshot:current"

    # -- catalog ----------------------------------------------------------------------
    @property
    def _cat(self) -> str:
        return f"{self.prefix}:{{cat}}"

    @property
    def items(self) -> str:
        """Set of item ids added at run time (not from the dataset)."""
        return f"{self._cat}:items"

    def item(self, item_id: str) -> str:
        """Hash of one run-time item: `meta` (JSON) and `feat:<modality>` (float32 bytes)."""
        return f"{self._cat}:item:{item_id}"

    @property
    def deleted(self) -> str:
        """Set of deleted item ids (snapshot or run-time): never recommended again."""
        return f"{self._cat}:items:deleted"

    @property
    def item_log(self) -> str:
        """Stream of catalog changes (`op` add|delete, `item_id`) that replicas tail."""
        return f"{self._cat}:items:log"


def global_id(stream_id: str, shard: int) -> str:
    """A stream id made unique across shards: `<ms>-<seq>` in shard 0, `<ms>-<seq>@N`
    in shard N (two shards may hand out the same id in the same millisecond)."""
    return stream_id if shard == 0 else f"{stream_id}@{shard}"


def split_id(gid: str) -> tuple[str, int]:
    """(stream id, shard) of a global id."""
    sid, _, shard = gid.partition("@")
    return sid, int(shard) if shard else 0
