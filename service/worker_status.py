"""What the worker published for the dashboard: its status hash (refreshed every few
seconds while it leads) and the stream of expert changes (pruning, expansion)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xsmoe.common.keys import Keys
from xsmoe.service.redis_client import AsyncRedis

# The worker writes every 2 s, training or not: silence past this means it is gone
# (or cannot reach Redis).
STALE_AFTER_S = 10.0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


@dataclass(frozen=True)
class WorkerStatus:
    leader: str
    updated_at: float
    phase: str  # reading | training
    window: int | None
    fill: int
    window_events: int
    window_seconds: float
    opened_at: float | None
    next_close_at: float | None
    untrained: int | None
    untrained_exact: bool
    last_window: int | None
    last_outcome: str
    last_reason: str
    last_version: str
    last_created_at: float | None

    def age(self, now: float) -> float:
        return max(0.0, now - self.updated_at)

    def stale(self, now: float) -> bool:
        return self.age(now) > STALE_AFTER_S

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> WorkerStatus:
        return cls(
            leader=raw.get("leader", "?"),
            updated_at=_float(raw.get("updated_at")) or 0.0,
            phase=raw.get("phase", ""),
            window=_int(raw.get("window")),
            fill=_int(raw.get("fill")) or 0,
            window_events=_int(raw.get("window_events")) or 0,
            window_seconds=_float(raw.get("window_seconds")) or 0.0,
            opened_at=_float(raw.get("opened_at")),
            next_close_at=_float(raw.get("next_close_at")),
            untrained=_int(raw.get("untrained")),
            untrained_exact=raw.get("untrained_exact") == "1",
            last_window=_int(raw.get("last_window")),
            last_outcome=raw.get("last_outcome", ""),
            last_reason=raw.get("last_reason", ""),
            last_version=raw.get("last_version", ""),
            last_created_at=_float(raw.get("last_created_at")),
        )


@dataclass(frozen=True)
class ModelEvent:
    at: float
    kind: str  # pruning | expansion | pruning+expansion
    modality: str
    stage: int
    before: int
    after: int
    version: str
    parent: str
    outcome: str
    window: str


async def read_status(redis: AsyncRedis, keys: Keys) -> WorkerStatus | None:
    """None when no worker has led in the last hour (the hash's TTL)."""
    raw: Any = await redis.hgetall(keys.worker_status)
    if not raw:
        return None
    return WorkerStatus.from_hash({_text(k): _text(v) for k, v in raw.items()})


async def read_model_events(redis: AsyncRedis, keys: Keys, count: int = 20) -> list[ModelEvent]:
    """The newest `count` expert changes, newest first."""
    raw: Any = await redis.xrevrange(keys.model_events, count=count)
    out = []
    for _, fields in raw:
        f = {_text(k): _text(v) for k, v in fields.items()}
        out.append(
            ModelEvent(
                at=_float(f.get("at")) or 0.0,
                kind=f.get("kind", ""),
                modality=f.get("modality", ""),
                stage=_int(f.get("stage")) or 0,
                before=_int(f.get("before")) or 0,
                after=_int(f.get("after")) or 0,
                version=f.get("version", ""),
                parent=f.get("parent", ""),
                outcome=f.get("outcome", ""),
                window=f.get("window", ""),
            )
        )
    return out
