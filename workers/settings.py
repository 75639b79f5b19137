"""Settings of the worker process: the shared ones plus windowing, gate and retention."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from xsmoe.common.settings import Settings
from xsmoe.model.device import DEVICES, check_device_name, resolve_device
from xsmoe.model.train import Loss, TrainConfig


class WorkerOptions(BaseModel):
    consumer: str = Field(
        default_factory=socket.gethostname,
        description="stable consumer name in the group (default: host name)",
    )
    group: str = Field("trainers", description="consumer group on the feedback stream")
    window_events: int = Field(10_000, ge=2, description="a window closes at this many events")
    window_seconds: float = Field(300.0, gt=0, description="... or this long after its first")
    block_ms: int = Field(1000, ge=10, description="XREADGROUP BLOCK per read")
    claim_idle_ms: int = Field(60_000, ge=100, description="claim others' entries idle this long")
    max_failures: int = Field(3, ge=1, description="failed windows before events are dead-lettered")
    epsilon: float = Field(0.005, ge=0, description="gate: promote if NDCG@10 >= serving - epsilon")
    keep: int = Field(5, ge=1, description="snapshots kept (older ones are deleted)")
    max_epochs: int = Field(
        TrainConfig.max_epochs,
        ge=1,
        description="epochs per window at most (early stopping ends sooner)",
    )
    lr: float = Field(TrainConfig.lr, gt=0, description="learning rate of the window's optimizer")
    loss: Loss = Field(
        TrainConfig.loss, description="full softmax over known items, or in-batch with logQ"
    )
    val_fraction: float = Field(0.15, gt=0, lt=0.5, description="early-stopping part of a window")
    val_sample: int = Field(
        TrainConfig.val_sample,
        ge=1,
        description="early stopping ranks against the cases' items plus this many others "
        "drawn uniformly (a catalog this small or smaller: against every item)",
    )
    online_cases: int = Field(
        2000,
        ge=1,
        description="on a catalog of more than val_sample items, the online score ranks "
        "at most this many of a window's cases against every item (a uniform sample)",
    )
    gate_fraction: float = Field(0.15, gt=0, lt=0.5, description="held-out tail the gate scores")
    lock_ttl_ms: int = Field(30_000, ge=1000, description="leader lock expiry (renewed at 1/3)")
    context: int = Field(50, ge=0, description="earlier items per user given as context")
    context_ttl_seconds: int = Field(
        30 * 86400, ge=60, description="a user's training context expires this long after use"
    )
    dead_letter_max: int = Field(100_000, ge=100, description="dead-letter stream length cap")
    ledger_lines: int = Field(
        10_000, ge=10, description="ledger lines before it is rotated (one older file kept)"
    )
    window_details: int = Field(1000, ge=1, description="windows whose per-event detail is kept")
    train: bool = Field(True, description="false: consume and ack only (ingestion benchmark)")
    device: str = Field(
        "auto", description=f"where windows train: {', '.join(DEVICES)} (auto: CUDA if present)"
    )
    dataset: str = Field("ml-100k", description="feature store name if the snapshot names none")
    features_dir: Path | None = Field(None, description="feature store (default by dataset)")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve Prometheus /metrics here (unset: off; 0: any)"
    )
    metrics_host: str = Field(
        "127.0.0.1", description="address the metrics port listens on (0.0.0.0: every interface)"
    )

    @field_validator("device")
    @classmethod
    def _device_exists(cls, value: str) -> str:
        # Refused at start-up, not at the first window: a missing GPU is a configuration
        # error, and failing windows would dead-letter the events they hold.
        if value != "auto":  # auto never fails, and need not touch CUDA at import
            resolve_device(value)
        return check_device_name(value)


class WorkerSettings(Settings):
    worker: WorkerOptions = WorkerOptions()
