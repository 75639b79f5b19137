"""Typed dependencies: the process's runtime objects, read from app state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from common.keys import Keys
from service.dashboard.traffic import TrafficSampler
from service.errors import NoModel
from service.item_encoder import ItemEncoder
from service.metrics import Metrics
from service.serving import Serving
from service.settings import ServiceSettings
from service.state import ServingState
from service.store import Store


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
