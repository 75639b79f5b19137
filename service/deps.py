"""Typed dependencies: the process's runtime objects, read from app state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from xsmoe.common.keys import Keys
from xsmoe.service.dashboard.traffic import TrafficSampler
from xsmoe.service.errors import NoModel
from xsmoe.service.item_encoder import ItemEncoder
from xsmoe.service.metrics import Metrics
from xsmoe.service.serving import Serving
from xsmoe.service.settings import ServiceSettings
from xsmoe.service.state import ServingState
from xsmoe.service.store import Store


@dataclass
class Runtime:
    settings: ServiceSettings
    keys: Keys
    store: Store
    serving: Serving
    encoder: ItemEncoder
    metrics: Metrics
    traffic: TrafficSampler


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_state(runtime: RuntimeDep) -> ServingState:
    state = runtime.serving.current
    if state is None:
        refused = runtime.serving.failed
        why = f"; refused: {refused}" if refused else ""
        raise NoModel(
            f"no snapshot loaded yet from {runtime.serving.root} "
            f"(run `xsmoe bootstrap` or wait for the worker){why}"
        )
    return state


StateDep = Annotated[ServingState, Depends(get_state)]
