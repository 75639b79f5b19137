"""Redis key names: the contract between the service and the workers.

Every key starts with the deployment's prefix (XSMOE_REDIS_PREFIX), so several
deployments, or several tests, can share one Redis server.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "xsmoe"

    @property
    def feedback(self) -> str:
        """Stream of accepted feedback events (the worker's input)."""
        return f"{self.prefix}:feedback"

    @property
    def dead_letter(self) -> str:
        """Stream of events the worker could not train on (malformed or poison)."""
        return f"{self.prefix}:feedback:dead"

    @property
    def leader(self) -> str:
        """The training leader's lock (set-if-absent with expiry)."""
        return f"{self.prefix}:worker:leader"

    def context(self, user_id: str) -> str:
        """List of a user's items the worker has trained on (context for later windows)."""
        return f"{self.prefix}:worker:ctx:{user_id}"

    @property
    def online(self) -> str:
        """Hash of prequential metrics per serving version: `<version>|n`, `|hits`, `|ndcg`."""
        return f"{self.prefix}:online"

    def event(self, event_id: str) -> str:
        """Idempotency marker of one event id -> its stream id."""
        return f"{self.prefix}:evt:{event_id}"

    def history(self, user_id: str) -> str:
        """List of a user's positive item ids, newest last (capped)."""
        return f"{self.prefix}:hist:{user_id}"

    def disliked(self, user_id: str) -> str:
        """Set of items a user disliked: never recommended to them again."""
        return f"{self.prefix}:neg:{user_id}"

    @property
    def popular(self) -> str:
        """Sorted set: positive feedback count per item."""
        return f"{self.prefix}:popular"

    @property
    def items(self) -> str:
        """Set of item ids added at run time (not from the dataset)."""
        return f"{self.prefix}:items"

    def item(self, item_id: str) -> str:
        """Hash of one run-time item: `meta` (JSON) and `feat:<modality>` (float32 bytes)."""
        return f"{self.prefix}:item:{item_id}"

    @property
    def deleted(self) -> str:
        """Set of deleted item ids (snapshot or run-time): never recommended again."""
        return f"{self.prefix}:items:deleted"

    @property
    def item_log(self) -> str:
        """Stream of catalog changes (`op` add|delete, `item_id`) that replicas tail."""
        return f"{self.prefix}:items:log"

    @property
    def snapshot_channel(self) -> str:
        """Pub/sub channel announcing a new current snapshot version."""
        return f"{self.prefix}:snapshots"

    @property
    def snapshot_pointer(self) -> str:
        """The current snapshot version (mirror of the CURRENT file)."""
        return f"{self.prefix}:snapshot:current"
