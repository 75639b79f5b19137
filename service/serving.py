"""Holds the current serving state and changes it: swaps and catalog changes.

Every assignment to `current` happens on the event loop, so the three writers
(snapshot swap, items added or deleted here, items synced from other replicas)
never race; the slow part of a swap (load, validate, embed, warm up) and of a
catalog change (embed the added items, append them to the index) runs in a
thread off to the side and cannot disturb requests in flight.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from pathlib import Path

from xsmoe.common.snapshot_store import SnapshotStore
from xsmoe.model.features import ModalitySpec
from xsmoe.service.batcher import UserVectors
from xsmoe.service.catalog import RuntimeCatalog
from xsmoe.service.metrics import Metrics
from xsmoe.service.retry import Backoff
from xsmoe.service.settings import ServingSettings
from xsmoe.service.state import ServingState, load_state
from xsmoe.service.versions import Versions

log = logging.getLogger(__name__)


class SwapFailed(Exception):
    """A snapshot could not be served; the previous one keeps serving."""


class Serving:
    def __init__(
        self,
        store: SnapshotStore,
        root: Path,
        settings: ServingSettings,
        metrics: Metrics,
        expected_features: dict[str, ModalitySpec] | None,
    ) -> None:
        self.store = store
        self.root = root  # where versions are loaded from: the store's own or a cache
        self.settings = settings
        self.metrics = metrics
        self.expected_features = expected_features
        self.catalog = RuntimeCatalog()
        self.current: ServingState | None = None
        self.live_popular: tuple[str, ...] = ()
        self.failed: dict[str, str] = {}  # version -> why it was refused
        self._unavailable: set[str] = set()  # of those, versions the store failed to deliver
        self.retry = Backoff(cap=settings.retry_max_seconds)
        self.swaps = 0
        self.user_vectors = UserVectors()
        self._popular: list[str] = []
        self._popular_from: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        self._lock = asyncio.Lock()  # one swap at a time
        self._changing = asyncio.Lock()  # one catalog change at a time
        self.versions = Versions(store, root, expected_features)

    async def state_at(self, version: str | None) -> ServingState | None:
        """The serving state, or `version` loaded beside it when a request asks one
        explicitly (versions.UnknownVersion, versions.VersionUnusable if it cannot)."""
        state = self.current
        if version is None or (state is not None and state.version == version):
            return state
        return await self.versions.state(version, self.catalog)

    def refusals(self) -> dict[str, str]:
        """Why versions were refused, as an answer may say it: the snapshot store's
        location and the local cache's path are the operator's (they are in the log),
        and so is what a failing store said (it may name hosts)."""
        places = sorted({str(self.root), self.store.url}, key=len, reverse=True)
        out = {}
        for version, reason in self.failed.items():
            if version in self._unavailable:
                out[version] = "unavailable: the snapshot store did not deliver it (see the log)"
                continue
            for place in places:
                reason = reason.replace(place + "/", "").replace(place, "<snapshot store>")
            out[version] = reason
        return out

    def popular(self) -> list[str]:
        """Popular items, best first: live feedback counts, then the snapshot's order.
        Merged again only when either list was replaced (not per request)."""
        live, base = self.live_popular, self.current.popular if self.current else ()
        if self._popular_from[0] is not live or self._popular_from[1] is not base:
            self._popular = list(dict.fromkeys((*live, *base)))
            self._popular_from = (live, base)
        return self._popular

    async def catalog_changed(self) -> None:
        """Bring the current state up to date with the run-time catalog. The work (the
        item tower over added items, the index append) runs in a thread; only the
        assignment happens on the loop, so requests are not held up by it."""
        async with self._changing:  # one at a time: each builds on the one before
            state = self.current
            if state is not None:
                self._set(await self._caught_up(state))

    async def _caught_up(self, state: ServingState) -> ServingState:
        """`state` with every change logged so far; returned on the loop with none left
        over, so assigning it at once loses nothing (callers hold `_changing`)."""
        while ops := self.catalog.since(state.catalog_seq):
            state = await asyncio.to_thread(state.with_changes, ops)
        return state

    async def load(self, version: str) -> ServingState:
        """Load, validate, warm up and swap to `version`; on failure keep the old one."""
        async with self._lock:
            state = self.current
            if state is not None and state.version == version:
                return state
            start = time.perf_counter()
            try:
                new = await load_state(
                    self.store,
                    self.root,
                    version,
                    self.expected_features,
                    self.catalog,
                    self.settings.warmup_queries,
                    previous=state,
                )
            except Exception as exc:  # any failure: keep serving what we have
                self._refused(version, exc)
                raise SwapFailed(f"snapshot {version} refused: {exc}") from exc
            async with self._changing:  # changes made while loading, then the swap
                new = await self._caught_up(new)
                self._set(new)
            absorbed = self.catalog.absorb(new.retriever.catalog.main_rows)
            if absorbed:
                log.info("%d run-time items now in %s: dropped from memory", absorbed, version)
            self.user_vectors.clear()  # keyed by version; a reloaded version starts clean
            if state is None:  # the first load, before serving: park the imports and
                gc.freeze()  # this state outside the collector, so its passes stay short
            self.failed.pop(version, None)
            self.retry.clear(version)
            self.swaps += 1
            seconds = time.perf_counter() - start
            self.metrics.swaps.labels("ok").inc()
            self.metrics.swap_seconds.observe(seconds)
            log.info(
                "serving %s (was %s): %d items, experts %s, swap took %.2f s",
                version,
                state.version if state else "nothing",
                len(new.retriever.catalog),
                new.manifest.get("experts"),
                seconds,
            )
            keep = {version} | ({state.version} if state else set())
            try:  # fetched versions no longer served: the cache stays small
                await asyncio.to_thread(self.store.tidy_cache, self.root, keep)
            except OSError as exc:
                log.warning("snapshot cache %s not tidied: %s", self.root, exc)
            return new

    def _refused(self, version: str, exc: Exception) -> None:
        """Count and log a refusal once per distinct reason; schedule the next try."""
        reason = str(exc)
        delay = self.retry.failed(version)
        serving = self.current.version if self.current else "nothing"
        # OSError: the store or the disk failed us (StoreError is one); anything
        # else: the version itself is invalid. Both are tried again, later each time.
        why = "unavailable" if isinstance(exc, OSError) else "refused"
        if self.failed.get(version) == reason:
            log.info("snapshot %s still %s (next try in %.0f s): %s", version, why, delay, reason)
            return
        self.failed[version] = reason
        if isinstance(exc, OSError):
            self._unavailable.add(version)
        else:
            self._unavailable.discard(version)
        self.metrics.swaps.labels("failed").inc()
        log.error(
            "snapshot %s %s, still serving %s (next try in %.0f s): %s",
            version,
            why,
            serving,
            delay,
            reason,
        )

    def _set(self, state: ServingState) -> None:
        self.current = state
        self.metrics.index_items.set(len(state.retriever.catalog))
