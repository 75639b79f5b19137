"""Everything the model creates after construction (expanded and pruned experts, routers,
utilization counters, loss masks, scoring inputs) follows the device and dtype of the
parameters it joins; snapshots are float32 CPU whatever the model trained in."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from tests.model.synthetic import cyclic_stream, small_config
from xsmoe.model.device import DeviceUnavailable, check_device_name, resolve_device
from xsmoe.model.features import ModalitySpec
from xsmoe.model.item_tower import ItemTable
from xsmoe.model.recommender import Recommender
from xsmoe.model.retrieval import ItemFeatures, embed_features
from xsmoe.model.side_moe import MoEStage
from xsmoe.model.snapshot import load_snapshot, save_snapshot
from xsmoe.model.streaming import ProtocolConfig, StreamingProtocol
from xsmoe.model.train import Loss, TrainConfig, WindowReport, train_window

pytestmark = pytest.mark.timeout(120)

SPECS = {"text": ModalitySpec({"model": "synthetic"}, 3, 16)}
HAS_CUDA = torch.cuda.is_available()


def _tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def _counter(name: str) -> bool:
    return name.endswith(("usage_sum", "usage_count"))


def _expected_dtype(name: str, dtype: torch.dtype) -> torch.dtype:
    # utilization counters accumulate in at least float32 (see MoEStage.reset_utilization)
    return torch.promote_types(dtype, torch.float32) if _counter(name) else dtype


def _grow_and_prune(
    model: Recommender, config: TrainConfig, check: Callable[[], None] | None = None
) -> tuple[ItemTable, WindowReport, list[float]]:
    """Two windows: the first grows (2 -> 3 experts per stage), then one expert of stage 0
    is made to look unused, so the second prunes it before it grows again."""
    table, inter = cyclic_stream(n_users=60)
    p = StreamingProtocol(
        inter, {str(i): i for i in range(len(table))}, len(table), ProtocolConfig(n_windows=3)
    )
    losses: list[float] = []

    def on_epoch(epoch: int, loss: float, ndcg: float) -> None:
        losses.append(loss)
        if check is not None:
            check()

    train_window(
        model, table, p.train_sequences(0), p.val_cases(0), p.known_upto(0), config,
        on_epoch=on_epoch,
    )  # fmt: skip
    stage = model.content.ladders["text"].stage_list[0]  # type: ignore[union-attr]
    assert stage.n_experts == 3 and stage.usage_count.item() > 0
    stage.usage_sum[2] = 0.0  # expert 1 of stage 0: as if never routed to
    report = train_window(
        model, table, p.train_sequences(1), p.val_cases(1), p.known_upto(1), config,
        on_epoch=on_epoch,
    )  # fmt: skip
    assert report.pruned["text"][0] == 1
    return table, report, losses


def _grown_model(dtype: torch.dtype) -> Recommender:
    torch.manual_seed(0)
    # counted as trained once: its first window prunes and expands before training
    return Recommender(replace(small_config(experts=2), trained_windows=1)).to(dtype)


def test_stage_expand_and_prune_create_modules_in_the_stage_dtype() -> None:
    torch.manual_seed(0)
    stage = MoEStage(dim=8, n_experts=2, bottleneck=4, init_std=0.01).to(torch.float64)
    stage.expand()
    stage.train()
    x = torch.randn(6, 8, dtype=torch.float64)
    stage(x, x)
    with torch.no_grad():
        stage.usage_sum[1] = 0.0
    assert stage.prune(tau=0.1) == 0
    assert {n: t.dtype for n, t in _tensors(stage).items()} == dict.fromkeys(
        _tensors(stage), torch.float64
    )
    out = stage(x, x)
    assert out.dtype == torch.float64


@pytest.mark.parametrize(("dtype", "loss"), [(torch.float64, "full"), (torch.bfloat16, "inbatch")])
def test_a_window_that_prunes_and_expands_keeps_the_model_dtype(
    dtype: torch.dtype, loss: Loss, tmp_path: Path
) -> None:
    model = _grown_model(dtype)
    config = replace(TrainConfig(), max_epochs=2, batch_size=16, loss=loss)
    table, report, losses = _grow_and_prune(model, config)
    assert report.experts == {"text": (3, 4)}  # stage 0: 3 -1 +1, stage 1: 3 +1
    assert losses and all(math.isfinite(x) for x in losses)
    wrong = {
        n: t.dtype
        for n, t in _tensors(model).items()
        if t.is_floating_point() and t.dtype != _expected_dtype(n, dtype)
    }
    assert wrong == {}
    assert {t.device.type for t in _tensors(model).values()} == {"cpu"}
    embeddings = model.item_embeddings(table)
    assert embeddings.dtype == dtype and bool(torch.isfinite(embeddings).all())

    # The snapshot is float32 on the CPU, whatever the model trained in; it scores alike.
    path = save_snapshot(
        tmp_path, model, [f"i{k}" for k in range(len(table))], embeddings.float().numpy(), SPECS
    )
    with safe_open(str(path / "weights.safetensors"), framework="pt") as fh:
        stored = {fh.get_slice(k).get_dtype() for k in fh.keys()}  # noqa: SIM118
    assert stored == {"F32"}
    loaded = load_snapshot(path).model
    assert loaded.current_config().experts == {"text": (3, 4)}
    assert {t.dtype for t in _tensors(loaded).values() if t.is_floating_point()} == {torch.float32}
    assert {t.device.type for t in _tensors(loaded).values()} == {"cpu"}
    tolerance = 1e-5 if dtype == torch.float64 else 0.0  # bfloat16 -> float32 is exact
    for name, value in _tensors(model).items():
        torch.testing.assert_close(
            _tensors(loaded)[name], value.float(), atol=tolerance, rtol=tolerance
        )


def test_new_items_embed_as_float32_for_faiss_from_a_float64_model() -> None:
    model = Recommender(small_config()).to(torch.float64).eval()
    features = np.random.default_rng(0).normal(size=(4, 3, 16)).astype(np.float32)
    vectors = embed_features(model, ItemFeatures({"text": features}, {"text": np.ones(4, bool)}))
    assert vectors.dtype == np.float32 and vectors.shape == (4, 32)


def test_device_names_are_checked_and_auto_follows_the_machine() -> None:
    for name in ("auto", "cpu", "cuda", "cuda:1"):
        assert check_device_name(name) == name
    for bad in ("gpu", "cuda:", "CPU", "mps", "cuda:x", ""):
        with pytest.raises(DeviceUnavailable, match="auto, cpu, cuda, cuda:N"):
            check_device_name(bad)
    assert resolve_device("auto").type == ("cuda" if HAS_CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        TrainConfig(device="tpu")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_cuda_asked_but_absent_is_a_clear_error_not_a_silent_cpu() -> None:
    with pytest.raises(DeviceUnavailable, match="no usable CUDA GPU"):
        resolve_device("cuda:0")
    table, _ = cyclic_stream(n_users=10)
    model = Recommender(small_config())
    with pytest.raises(DeviceUnavailable):  # before touching the model
        train_window(model, table, [], None, np.ones(len(table), bool), TrainConfig(device="cuda"))  # type: ignore[arg-type]


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_a_window_on_cuda_grows_and_prunes_there_and_snapshots_load_on_cpu(
    tmp_path: Path,
) -> None:
    model = _grown_model(torch.float32)  # a CPU model, as the worker's serving copy is
    seen: list[set[str]] = []

    def on_cuda() -> None:
        seen.append({t.device.type for t in _tensors(model).values()})

    config = replace(TrainConfig(), max_epochs=2, batch_size=16, device="cuda")
    table, report, losses = _grow_and_prune(model, config, on_cuda)
    assert seen and all(devices == {"cuda"} for devices in seen)  # new experts included
    assert all(math.isfinite(x) for x in losses) and report.experts == {"text": (3, 4)}
    assert {t.device.type for t in _tensors(model).values()} == {"cpu"}  # returned home
    embeddings = model.item_embeddings(table).numpy()
    path = save_snapshot(tmp_path, model, [f"i{k}" for k in range(len(table))], embeddings, SPECS)
    loaded = load_snapshot(path).model
    assert {t.device.type for t in _tensors(loaded).values()} == {"cpu"}
    # A model that lives on CUDA stays there.
    on_gpu = _grown_model(torch.float32).to("cuda")
    _grow_and_prune(on_gpu, config)
    assert {t.device.type for t in _tensors(on_gpu).values()} == {"cuda"}
