"""FAISS inner-product index over item embeddings, with stable integer ids."""

from __future__ import annotations

import faiss
import numpy as np


def build_index(embeddings: np.ndarray, ids: np.ndarray | None = None) -> faiss.Index:
    """Exact maximum-inner-product index; ids default to row numbers."""
    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    labels = np.arange(len(vectors), dtype=np.int64) if ids is None else ids.astype(np.int64)
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    if len(vectors):
        index.add_with_ids(vectors, labels)
    return index
