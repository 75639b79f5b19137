"""Running evaluation jobs (one variant, one seed, one setting) in child processes.

Each job runs in a fresh spawned process, so its peak memory is its own; with
`jobs > 1` several run side by side, one torch thread each.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, replace
from typing import Any

from tqdm import tqdm

from xsmoe import pipeline
from xsmoe.common.logs import setup_logging
from xsmoe.common.settings import Settings
from xsmoe.model.encoders import resolve_model_dir
from xsmoe.model.streaming import ProtocolConfig
from xsmoe.model.train import TrainConfig
from xsmoe.model.variants import run_variant

USER_KEYS = ("dropout", "max_len")  # settings of the user encoder, not of TrainConfig


def payload(
    settings: Settings,
    source: dict[str, str | None],
    variant: str,
    protocol: ProtocolConfig,
    train: TrainConfig,
    *,
    max_experts: int,
    dropout: float,
    max_len: int,
    setting: dict[str, Any] | None = None,
    test: bool = True,
    full_ft_windows: int = 2,
    full_ft_layers: int = 2,
    modalities: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One job; `setting` (from `xsmoe tune`) overrides training and user-encoder values."""
    setting = setting or {}
    train = replace(train, **{k: v for k, v in setting.items() if k not in USER_KEYS})
    return {
        "settings": settings.model_dump(mode="json"),
        "source": source,
        "variant": variant,
        "protocol": asdict(protocol),
        "train": asdict(train),
        "max_experts": max_experts,
        "dropout": setting.get("dropout", dropout),
        "max_len": setting.get("max_len", max_len),
        "test": test,
        "full_ft_windows": full_ft_windows,
        "full_ft_layers": full_ft_layers,
        "modalities": list(modalities) if modalities is not None else None,
    }


def _child(job: dict[str, Any], threads: int, show_progress: bool) -> dict[str, Any]:
    settings = Settings(**job["settings"])
    setup_logging("WARNING")
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(job["train"]["seed"])
    dataset = pipeline.load_source(job["source"])
    store = pipeline.open_features(settings, dataset.name)
    table = pipeline.content_table(store, job.get("modalities"))
    base = pipeline.base_config(
        table, max_len=job["max_len"], max_experts=job["max_experts"], dropout=job["dropout"]
    )
    protocol = pipeline.streaming_protocol(dataset, store, ProtocolConfig(**job["protocol"]))
    name = job["variant"]
    n_test = job["full_ft_windows"] if name == "full-ft" else None
    tower = None
    if name == "full-ft":
        from xsmoe.model.full_ft import FullFineTuneTower

        texts = {item.item_id: item.text for item in dataset.items}
        text_config = settings.text.to_config()

        def tower() -> torch.nn.Module:
            return FullFineTuneTower(
                resolve_model_dir(text_config, settings.cache_dir),
                [texts.get(i) for i in store.item_ids],
                job["full_ft_layers"],
                text_config.max_tokens,
                base.embed_dim,
            )

    total = n_test or protocol.config.n_windows - 1
    label = f"{name} seed {job['train']['seed']}"
    with tqdm(
        total=total, desc=label, unit="window", file=sys.stderr, disable=not show_progress
    ) as bar:

        def on_window(record: dict[str, Any]) -> None:
            bar.set_postfix(s=record["train_seconds"])
            bar.update(1)

        return run_variant(
            name,
            protocol,
            table,
            base,
            TrainConfig(**job["train"]),
            n_test_windows=n_test,
            item_tower=tower,
            on_window=on_window,
            test=job["test"],
        )


def run_jobs(
    jobs: Sequence[dict[str, Any]],
    workers: int,
    on_done: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every job (in order of submission), `workers` at a time; results in job order."""
    context = multiprocessing.get_context("spawn")
    threads = 1 if workers > 1 else max(1, torch_threads())
    with (
        ProcessPoolExecutor(max_workers=workers, mp_context=context, max_tasks_per_child=1) as pool,
        tqdm(total=len(jobs), desc="jobs", unit="job", file=sys.stderr) as bar,
    ):
        futures: list[Future[dict[str, Any]]] = [
            pool.submit(_child, job, threads, workers == 1) for job in jobs
        ]
        results = []
        for i, future in enumerate(futures):
            results.append(future.result())
            bar.update(1)
            if on_done is not None:
                on_done(i, results[-1])
    return results


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def with_seed(job: dict[str, Any], seed: int) -> dict[str, Any]:
    return {**job, "train": asdict(replace(TrainConfig(**job["train"]), seed=seed))}
