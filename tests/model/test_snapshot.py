from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest
import torch
from safetensors.torch import save

from tests.model.synthetic import cyclic_stream, small_config
from tests.model.tamper import rewrite_config, rewrite_snapshot_file
from xsmoe.model.features import ModalitySpec
from xsmoe.model.recommender import Recommender
from xsmoe.model.snapshot import (
    SnapshotError,
    current_version,
    list_versions,
    load_current,
    load_snapshot,
    save_snapshot,
    set_current,
)

SPECS = {"text": ModalitySpec({"model": "synthetic"}, 3, 16)}
HISTORY = [3, 4, 5, 6]


def _evolved_model() -> Recommender:
    """A model after 3 expansions and 1 prune: stage shapes no fresh config has."""
    torch.manual_seed(0)
    table, _ = cyclic_stream()
    model = Recommender(small_config())
    for _ in range(3):
        model.prune_and_expand(tau=0.1)
    model.train()
    model.encode_items(table.take(torch.arange(len(table))))  # a training pass: utilization
    stage = model.content.moe["text"].stages[0]  # type: ignore[union-attr]
    stage.usage_sum[2] = 0.0  # as if expert 1 of stage 1 had never been routed to
    pruned = model.prune_and_expand(tau=0.1, expand=False)
    assert pruned["text"][0] == 1
    assert model.current_config().experts["text"] == (3, 4)
    return model.eval()


def _scores(model: Recommender, embeddings: np.ndarray) -> np.ndarray:
    user = model.user_embedding(torch.from_numpy(embeddings[HISTORY]))
    return (torch.from_numpy(embeddings) @ user).numpy()


def _save(tmp_path: Path) -> tuple[Recommender, np.ndarray, Path]:
    model = _evolved_model()
    table, _ = cyclic_stream()
    embeddings = model.item_embeddings(table).numpy()
    ids = [f"item-{i}" for i in range(len(table))]
    path = save_snapshot(tmp_path, model, ids, embeddings, SPECS, metrics={"ndcg@10": 0.5})
    return model, embeddings, path


LOADER = """
import json, sys, torch
from pathlib import Path
from xsmoe.model.snapshot import load_snapshot
snap = load_snapshot(Path(sys.argv[1]))
emb = torch.from_numpy(snap.embeddings)
user = snap.model.user_embedding(emb[[3, 4, 5, 6]])
print(json.dumps({"scores": (emb @ user).tolist(), "experts": snap.manifest["experts"]}))
"""


def test_save_load_after_expand_and_prune_same_scores_in_fresh_process(tmp_path: Path) -> None:
    model, embeddings, path = _save(tmp_path)
    expected = _scores(model, embeddings)
    out = subprocess.run(
        [sys.executable, "-c", LOADER, str(path)], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    np.testing.assert_allclose(result["scores"], expected, rtol=1e-5, atol=1e-6)
    assert result["experts"] == {"text": [3, 4]}
    # The reloaded model also recomputes the same item embeddings from features.
    snap = load_snapshot(path, expected_features=SPECS)
    table, _ = cyclic_stream()
    np.testing.assert_allclose(snap.model.item_embeddings(table).numpy(), embeddings, atol=1e-6)
    assert snap.model.current_config().frozen == model.current_config().frozen
    assert snap.index.ntotal == len(embeddings)
    # the embeddings are mapped from the file, not copied; the index was measured
    assert isinstance(snap.embeddings, np.memmap) and not snap.embeddings.flags.writeable
    np.testing.assert_array_equal(snap.embeddings, embeddings)
    info = snap.index_info
    assert info["kind"] == "flat" and info["recall@10"] == 1.0
    assert info["query_source"] == "items" and info["queries"] == len(embeddings)
    assert info["bytes"] == (path / "index.faiss").stat().st_size


def test_versions_and_pointer(tmp_path: Path) -> None:
    _, _, first = _save(tmp_path)
    assert current_version(tmp_path) is None
    with pytest.raises(SnapshotError, match="no current snapshot"):
        load_current(tmp_path)
    set_current(tmp_path, first.name)
    _, _, second = _save(tmp_path)
    assert list_versions(tmp_path) == ["v000001", "v000002"]
    assert load_current(tmp_path).version == "v000001"
    set_current(tmp_path, second.name)
    assert load_current(tmp_path).version == "v000002"
    with pytest.raises(SnapshotError, match="cannot point"):
        set_current(tmp_path, "v000099")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_corrupt_or_incompatible_snapshots_are_refused(tmp_path: Path) -> None:
    _, _, path = _save(tmp_path)
    other = {"text": ModalitySpec({"model": "another-encoder"}, 3, 16)}
    with pytest.raises(SnapshotError, match="this deployment has"):
        load_snapshot(path, expected_features=other)
    with (path / "weights.safetensors").open("r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00garbage")
    with pytest.raises(SnapshotError, match="checksum mismatch for weights.safetensors"):
        load_snapshot(path)
    _, _, second = _save(tmp_path)
    (second / "index.faiss").unlink()
    with pytest.raises(SnapshotError, match="index.faiss is missing"):
        load_snapshot(second)
    with pytest.raises(SnapshotError, match="no snapshot"):
        load_snapshot(tmp_path / "v000404")


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path) -> None:
    _, _, path = _save(tmp_path)
    config = json.loads((path / "config.json").read_text())
    config["recommender"]["experts"]["text"] = [1, 1]  # lies about the architecture
    (path / "config.json").write_text(json.dumps(config))
    manifest = json.loads((path / "manifest.json").read_text())
    import hashlib

    manifest["checksums"]["config.json"] = hashlib.sha256(
        (path / "config.json").read_bytes()
    ).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match="do not fit the recorded architecture"):
        load_snapshot(path)


def test_utilization_travels_with_the_snapshot_so_a_restarted_worker_can_prune(
    tmp_path: Path,
) -> None:
    table, _ = cyclic_stream()
    model, _, path = _save(tmp_path)
    model.train()
    model.encode_items(table.take(torch.arange(len(table))))  # usage after the last prune
    path = save_snapshot(
        tmp_path, model, [f"item-{i}" for i in range(len(table))],
        model.item_embeddings(table).numpy(), SPECS,
    )  # fmt: skip
    loaded = load_snapshot(path)
    assert loaded.model.utilization() == model.utilization()
    assert any(s for stages in loaded.model.utilization().values() for s in stages)


def test_snapshots_written_before_utilization_was_saved_still_load(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from xsmoe.model import snapshot as snap

    _, _, path = _save(tmp_path)
    weights = load_file(str(path / "weights.safetensors"))
    old = {k: v for k, v in weights.items() if not k.endswith(("usage_sum", "usage_count"))}
    save_file(old, str(path / "weights.safetensors"))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["checksums"]["weights.safetensors"] = snap.sha256_of(path / "weights.safetensors")
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert load_snapshot(path).model.config.experts == {"text": (3, 4)}
    del old[next(k for k in old if k.endswith("router.weight"))]  # a real weight missing
    save_file(old, str(path / "weights.safetensors"))
    manifest["checksums"]["weights.safetensors"] = snap.sha256_of(path / "weights.safetensors")
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match="missing keys"):
        load_snapshot(path)


def test_duplicate_item_ids_are_refused_naming_one(tmp_path: Path) -> None:
    model, embeddings, path = _save(tmp_path)
    ids = [f"item-{i}" for i in range(len(embeddings))]
    ids[5] = "item-2"
    with pytest.raises(SnapshotError, match="item id 'item-2' appears more than once"):
        save_snapshot(tmp_path, model, ids, embeddings, SPECS)  # never written
    rewrite_snapshot_file(path, "items.json", json.dumps(ids).encode())
    with pytest.raises(SnapshotError, match="item id 'item-2' appears more than once"):
        load_snapshot(path)


@pytest.mark.parametrize("pointer", ["../outside", "/etc", "v000001/../../x", "latest", "v1"])
def test_a_pointer_that_names_no_version_is_refused(tmp_path: Path, pointer: str) -> None:
    _save(tmp_path)
    (tmp_path / "CURRENT").write_text(pointer + "\n")
    with pytest.raises(SnapshotError, match=f"CURRENT names {pointer!r}, not a version like"):
        current_version(tmp_path)
    with pytest.raises(SnapshotError, match="not a version"):
        load_current(tmp_path)
    with pytest.raises(SnapshotError, match="not a version"):
        set_current(tmp_path, pointer)


def test_an_index_or_embeddings_of_the_wrong_dimension_or_rows_are_refused(
    tmp_path: Path,
) -> None:
    _, embeddings, path = _save(tmp_path)
    n, dim = embeddings.shape
    good_index = (path / "index.faiss").read_bytes()
    narrow = faiss.IndexFlatIP(dim // 2)
    narrow.add(np.ascontiguousarray(embeddings[:, : dim // 2]))
    rewrite_snapshot_file(path, "index.faiss", faiss.serialize_index(narrow).tobytes())
    with pytest.raises(SnapshotError, match=f"index has dimension {dim // 2}, .* embeds in {dim}"):
        load_snapshot(path)
    short = faiss.IndexFlatIP(dim)
    short.add(np.ascontiguousarray(embeddings[:-1]))
    rewrite_snapshot_file(path, "index.faiss", faiss.serialize_index(short).tobytes())
    with pytest.raises(SnapshotError, match=f"{n} items but the index holds {n - 1}"):
        load_snapshot(path)
    rewrite_snapshot_file(path, "index.faiss", good_index)
    wide = torch.zeros(n, dim * 2)
    rewrite_snapshot_file(path, "embeddings.safetensors", save({"items": wide}))
    with pytest.raises(SnapshotError, match=f"dimension {dim * 2}, the model embeds in {dim}"):
        load_snapshot(path)
    rewrite_snapshot_file(path, "embeddings.safetensors", save({"items": torch.zeros(n + 1, dim)}))
    with pytest.raises(SnapshotError, match=rf"{n} item ids but embeddings of shape \[{n + 1}, "):
        load_snapshot(path)


PEAK_GROWTH = """
import resource, sys
from pathlib import Path
from xsmoe.model.snapshot import SnapshotError, load_snapshot
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_snapshot(Path(sys.argv[1]))
except SnapshotError as exc:
    print(str(exc))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.parametrize("field", ["id_residual_rows", "n_item_ids"])
def test_a_config_claiming_millions_of_rows_is_refused_before_allocating(
    tmp_path: Path, field: str
) -> None:
    _, embeddings, path = _save(tmp_path)
    rows = 16_000_000  # x 32 dims x 4 bytes: 2 GB, were the model built
    rewrite_config(path, **{field: rows})
    out = subprocess.run(
        [sys.executable, "-c", PEAK_GROWTH, str(path)], capture_output=True, text=True, check=True
    )
    reason, grew_mb = out.stdout.strip().splitlines()
    assert f"config {field} is {rows}, but the snapshot has {len(embeddings)} items" in reason
    assert int(grew_mb) < 200, f"peak memory grew {grew_mb} MB before the refusal"


def test_weights_are_checked_against_the_architecture_before_it_is_built(
    tmp_path: Path,
) -> None:
    _, _, path = _save(tmp_path)
    rewrite_config(path, bottleneck=4096)  # every expert 64x wider than its weights
    with pytest.raises(SnapshotError, match=r"wrong shapes \[.*\(expected \[4096"):
        load_snapshot(path)
