"""Snapshot versions beside the serving one: their manifests (for GET /v1/models) and,
for a request that asks one version explicitly, that version loaded next to the
serving one. At most `keep` such versions stay loaded (least recently asked goes
first); each is loaded off the event loop, one load at a time, so asking for old
versions can cost memory and a wait, never the serving state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from xsmoe.common.snapshot_store import SnapshotStore
from xsmoe.model.features import ModalitySpec
from xsmoe.model.snapshot import check_version
from xsmoe.service.catalog import RuntimeCatalog
from xsmoe.service.state import ServingState, load_state

log = logging.getLogger(__name__)

EXTRA_DIR = ".extra"  # under the serving cache: a swap's cache tidying leaves it alone
MAX_MANIFESTS = 1000
NAMES_TTL_S = 5.0  # the store's listing (an S3 LIST) is reused this long
LOAD_WAIT_S = 30.0  # a request waits this long for another request's load, then 503


class UnknownVersion(LookupError):
    """The snapshot store holds no such version."""


class VersionUnusable(Exception):
    """The version exists but cannot be loaded here (damaged, incompatible, or the
    store failed); the message is safe to show, the cause is logged."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class Versions:
    def __init__(
        self,
        store: SnapshotStore,
        root: Path,
        expected_features: dict[str, ModalitySpec] | None,
        keep: int = 2,
    ) -> None:
        self.store = store
        self.root = root / EXTRA_DIR
        self.expected_features = expected_features
        self.keep = keep
        self.loaded: OrderedDict[str, ServingState] = OrderedDict()
        self._manifests: dict[str, dict[str, Any]] = {}  # published versions never change
        # Versions that cannot be served here (damaged or incompatible): asked again,
        # they are refused at once instead of downloaded and loaded once more.
        self._unusable: dict[str, VersionUnusable] = {}
        self._names: tuple[float, list[str]] | None = None
        self._load = asyncio.Lock()

    async def names(self, want: str | None = None) -> list[str]:
        """Complete versions in the store, oldest first. Without `want`, listed now.
        With it (a version a request names), the last listing serves for NAMES_TTL_S,
        or for a second while it lacks `want`: a version just published is found at
        once, and asking for one that never existed costs no LIST per request."""
        now, cached = time.monotonic(), self._names
        if want is not None and cached is not None:
            age = now - cached[0]
            if age <= NAMES_TTL_S and (want in cached[1] or age <= 1.0):
                return cached[1]
        names = await asyncio.to_thread(self.store.versions)
        self._names = (now, names)
        return names

    async def manifest(self, version: str) -> dict[str, Any]:
        """The version's manifest; UnknownVersion if the store lacks it."""
        cached = self._manifests.get(version)
        if cached is not None:
            return cached
        try:
            check_version(version, "a model version")
            if version not in await self.names(version):
                raise UnknownVersion(version)
            manifest = await asyncio.to_thread(self.store.manifest, version)
        except UnknownVersion:
            raise
        except OSError as exc:
            log.warning("manifest of %s unavailable: %s", version, exc)
            raise VersionUnusable(f"the snapshot store did not answer for {version}", True) from exc
        except Exception as exc:
            raise UnknownVersion(version) from exc
        if len(self._manifests) < MAX_MANIFESTS:
            self._manifests[version] = manifest
        return manifest

    async def state(self, version: str, catalog: RuntimeCatalog) -> ServingState:
        """`version` loaded with the run-time catalog applied, loading it if needed."""
        state = self.loaded.get(version)
        if state is None:
            if version in self._unusable:
                raise self._unusable[version]
            try:
                await asyncio.wait_for(self._load.acquire(), LOAD_WAIT_S)
            except TimeoutError as exc:
                raise VersionUnusable(
                    f"{version} is still loading for another request; retry shortly", True
                ) from exc
            try:
                state = self.loaded.get(version)
                if state is None:
                    state = await self._load_version(version, catalog)
            except VersionUnusable as exc:
                if not exc.transient:
                    self._unusable[version] = exc
                raise
            finally:
                self._load.release()
        if ops := catalog.since(state.catalog_seq):  # embeds added items: off the loop
            state = await asyncio.to_thread(state.with_changes, ops)
        self.loaded[version] = state
        self.loaded.move_to_end(version)
        while len(self.loaded) > self.keep:
            dropped, _ = self.loaded.popitem(last=False)
            log.info("explicit version %s unloaded (at most %d kept)", dropped, self.keep)
        return state

    async def _load_version(self, version: str, catalog: RuntimeCatalog) -> ServingState:
        await self.manifest(version)  # UnknownVersion before any download
        try:
            state = await load_state(
                self.store, self.root, version, self.expected_features, catalog, 0
            )
        except OSError as exc:
            log.warning("explicit version %s unavailable: %s", version, exc)
            raise VersionUnusable(f"the snapshot store failed to deliver {version}", True) from exc
        except Exception as exc:
            log.error("explicit version %s cannot be served: %s", version, exc)
            raise VersionUnusable(
                f"{version} cannot be served by this process (damaged or incompatible; "
                "the server log says why)",
                False,
            ) from exc
        log.info("explicit version %s loaded beside the serving one", version)
        keep = {*self.loaded, version}
        try:
            await asyncio.to_thread(self.store.tidy_cache, self.root, keep)
        except OSError as exc:
            log.warning("extra snapshot cache %s not tidied: %s", self.root, exc)
        return state
