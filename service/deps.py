"""Typed dependencies: the process's runtime objects, read from app state."""

from __future__ import annotations

import math
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
        # Where snapshots are looked for is logged at startup, never told to clients;
        # a refused version's reason names files, so only the versions are listed.
        refused = ", ".join(sorted(runtime.serving.failed))
        why = f"; refused: {refused} (the server log says why)" if refused else ""
        retry = math.ceil(runtime.settings.serving.poll_seconds)  # the next pointer read
        raise NoModel(
            f"no snapshot loaded yet: run `xsmoe bootstrap` or wait for the worker{why}",
            headers={"Retry-After": str(retry)},
        )
    return state


StateDep = Annotated[ServingState, Depends(get_state)]
