"""Item towers: item rows -> item vectors.

`ContentTower` (the product): side MoE per modality over cached features, then
gated fusion. No item-ID parameters, so a brand-new item is scored as soon as
its features exist. `IdTower` (the sasrec-id baseline): a learned embedding
per item row.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from xsmoe.model.features import FeatureStore
from xsmoe.model.fusion import ModalityGateFusion
from xsmoe.model.side_moe import SideMoE, SideMoEConfig

# A table at most this large is moved to the window's device (and dtype) once; a larger
# one stays where it is (memory-mapped) and each batch's rows are gathered and moved.
MOVE_MAX_BYTES = 2 << 30
# Above this size a mapped table's scattered rows are read with pread, not through the
# mapping: a page fault maps up to 16 neighbouring cached pages (fault-around), so ten
# thousand scattered rows of a million-item store would keep ~1.5 GB of it resident.
PREAD_ABOVE_BYTES = 256 << 20


class MappedFeatures:
    """One modality's feature file: a private read-only-in-practice mapping (the table's
    tensor is a view of it) and a descriptor for reading scattered rows."""

    def __init__(self, path: Path, row_floats: int) -> None:
        self.row_bytes = row_floats * 4  # float32 on disk
        self.fd = os.open(path, os.O_RDONLY)
        # ACCESS_COPY (MAP_PRIVATE): a writable buffer torch accepts without a copy;
        # nothing writes to it, and a write would never reach the file.
        self.mapping = mmap.mmap(self.fd, 0, access=mmap.ACCESS_COPY)

    def __del__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.close(self.fd)

    def release(self, lo: int, hi: int) -> None:
        """Drop rows [lo, hi)'s pages from this process (they stay in the page cache;
        nothing is lost: nothing was written)."""
        start, end = lo * self.row_bytes, hi * self.row_bytes
        start -= start % mmap.PAGESIZE  # madvise wants a page-aligned start
        if end > start:
            self.mapping.madvise(mmap.MADV_DONTNEED, start, end - start)

    def read(self, rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """(len(rows), *shape) float32 rows read with pread, one call per run of
        consecutive rows."""
        unique, inverse = np.unique(rows, return_inverse=True)
        out = np.empty((len(unique), self.row_bytes // 4), np.float32)
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        for lo, hi in zip(
            np.concatenate([[0], breaks]), np.concatenate([breaks, [len(unique)]]), strict=True
        ):
            want = (hi - lo) * self.row_bytes
            got = os.preadv(self.fd, [out[lo:hi].data.cast("B")], int(unique[lo]) * self.row_bytes)
            if got != want:
                raise OSError(f"short read of feature rows: {got} of {want} bytes")
        return out[inverse.reshape(-1)].reshape(len(rows), *shape)


@dataclass(frozen=True)
class ItemTable:
    """Cached features of every item as tensors, indexed by store row.

    From a store the features are the store's memory-mapped files themselves (no copy
    into RAM): a batch gathers its rows, and a pass over the whole table (`batches`)
    gives each chunk's pages back to the kernel once used, so the process keeps only
    the pages in use resident however large the catalog."""

    features: dict[str, torch.Tensor]  # (N, L, H) float32 (or the model's dtype, see `to`)
    present: dict[str, torch.Tensor]  # (N,) bool
    # True: row i is catalog row i (the model may know it); False: items the model
    # has never seen, numbered from 0 (e.g. new items embedded at serving time)
    catalog: bool = True
    # modality -> the private mapping its features are a view of (see `from_store`)
    maps: dict[str, MappedFeatures] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_store(cls, store: FeatureStore, modalities: Iterable[str] | None = None) -> ItemTable:
        """The store's rows as they are now, features mapped from its files, not read."""
        names = list(store.modalities if modalities is None else modalities)
        features, maps = {}, {}
        for m in names:
            spec, n = store.specs[m], len(store)
            if n == 0:
                features[m] = torch.zeros(0, spec.n_layers, spec.hidden)
                continue
            maps[m] = MappedFeatures(store.path / f"{m}.f32", spec.n_layers * spec.hidden)
            count = n * spec.n_layers * spec.hidden
            view = np.frombuffer(maps[m].mapping, np.float32, count)
            view = view.reshape(n, spec.n_layers, spec.hidden)
            features[m] = torch.from_numpy(view)
        present = {m: torch.from_numpy(store.present(m)) for m in names}
        return cls(features, present, maps=maps)

    def __len__(self) -> int:
        return len(next(iter(self.present.values())))

    @property
    def device(self) -> torch.device:
        return next(iter(self.present.values())).device

    @property
    def nbytes(self) -> int:
        return sum(f.numel() * f.element_size() for f in self.features.values())

    def select(self, modalities: Iterable[str]) -> ItemTable:
        """The same rows with only these modalities (no copy)."""
        names = list(modalities)
        return ItemTable(
            {m: self.features[m] for m in names},
            {m: self.present[m] for m in names},
            self.catalog,
            {m: self.maps[m] for m in names if m in self.maps},
        )

    def to(self, device: torch.device, dtype: torch.dtype) -> ItemTable:
        """The table on `device`, features in `dtype` (a model's): moved once per window,
        not once per batch. A table above MOVE_MAX_BYTES stays as it is: copying a
        million-item catalog would cost more memory than the batches it saves."""
        if self.nbytes > MOVE_MAX_BYTES:
            return self
        features = {m: f.to(device=device, dtype=dtype) for m, f in self.features.items()}
        unmoved = all(features[m] is f for m, f in self.features.items())
        return ItemTable(
            features,
            {m: p.to(device) for m, p in self.present.items()},
            self.catalog,
            self.maps if unmoved else {},
        )

    def take(self, rows: torch.Tensor) -> ItemInputs:
        rows = rows.to(self.device)
        return ItemInputs(
            rows,
            {m: self._gather(m, rows) for m in self.features},
            {m: p[rows] for m, p in self.present.items()},
            self.catalog,
        )

    def _gather(self, m: str, rows: torch.Tensor) -> torch.Tensor:
        features = self.features[m]
        mapped = self.maps.get(m)
        if mapped is None or features.numel() * 4 <= PREAD_ABOVE_BYTES:
            return features[rows]
        return torch.from_numpy(mapped.read(rows.cpu().numpy(), tuple(features.shape[1:])))

    def batches(self, batch_size: int) -> Iterator[ItemInputs]:
        """Consecutive rows, `batch_size` at a time, in row order. Mapped pages of a batch
        are dropped from this process once the caller asks for the next one (they stay
        in the page cache): a pass over the table keeps one batch resident."""
        for lo in range(0, len(self), batch_size):
            hi = min(lo + batch_size, len(self))
            rows = torch.arange(lo, hi, device=self.device)
            yield ItemInputs(
                rows,
                {m: f[lo:hi] for m, f in self.features.items()},
                {m: p[lo:hi] for m, p in self.present.items()},
                self.catalog,
            )
            self.release(lo, hi)

    def release(self, lo: int = 0, hi: int | None = None) -> None:
        """Drop the mapped pages of rows [lo, hi) from this process (a read faults them
        back in from the page cache or the file; nothing is lost: nothing was written)."""
        hi = len(self) if hi is None else hi
        for mapped in self.maps.values():
            mapped.release(lo, hi)


@dataclass(frozen=True)
class ItemInputs:
    rows: torch.Tensor  # (B,) long
    features: dict[str, torch.Tensor]  # (B, L, H)
    present: dict[str, torch.Tensor]  # (B,)
    catalog: bool = True  # rows are catalog rows (see ItemTable.catalog)

    def to(self, device: torch.device, dtype: torch.dtype) -> ItemInputs:
        """On `device`, floating features in `dtype` (no copy where they already are)."""
        return ItemInputs(
            self.rows.to(device),
            {m: f.to(device=device, dtype=dtype) for m, f in self.features.items()},
            {m: p.to(device) for m, p in self.present.items()},
            self.catalog,
        )


class ContentTower(nn.Module):
    def __init__(
        self,
        shapes: dict[str, tuple[int, int]],  # modality -> (n_layers, hidden)
        experts: dict[str, tuple[int, ...]],
        embed_dim: int,
        bottleneck: int,
        max_experts: int,
        id_rows: int = 0,
    ) -> None:
        super().__init__()
        self.moe = nn.ModuleDict(
            {
                m: SideMoE(SideMoEConfig(hidden, experts[m], bottleneck, max_experts=max_experts))
                for m, (_, hidden) in shapes.items()
            }
        )
        self.fusion = ModalityGateFusion(
            {m: hidden for m, (_, hidden) in shapes.items()}, embed_dim
        )
        # Optional warm-item ID residual: a learned vector per catalog row added to the
        # content vector. Zero-initialised, and Adam never moves a row that got no
        # gradient, so items the model has not trained on (new, cold) stay pure content.
        self.id_residual: nn.Embedding | None = None
        if id_rows > 0:
            self.id_residual = nn.Embedding(id_rows, embed_dim)
            nn.init.zeros_(self.id_residual.weight)

    @property
    def ladders(self) -> dict[str, SideMoE]:
        return {m: cast(SideMoE, moe) for m, moe in self.moe.items()}

    def forward(self, inputs: ItemInputs) -> torch.Tensor:
        vectors = {m: moe(inputs.features[m]) for m, moe in self.moe.items()}
        fused: torch.Tensor = self.fusion(vectors, inputs.present)
        if self.id_residual is None or not inputs.catalog:
            return fused
        n = self.id_residual.num_embeddings
        known = (inputs.rows < n).unsqueeze(-1)  # rows added after the model was built: none
        residual: torch.Tensor = self.id_residual(inputs.rows.clamp_max(n - 1))
        return fused + residual * known


class IdTower(nn.Module):
    def __init__(self, n_items: int, embed_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_items, embed_dim)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def forward(self, inputs: ItemInputs) -> torch.Tensor:
        return cast(torch.Tensor, self.embedding(inputs.rows))
