"""Unknown query parameters are refused, naming them: a typo (`?limt=5`, `?K=3`) must
not be silently served with the defaults, as unknown body fields are refused too."""

from __future__ import annotations

from fastapi import Request, params
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute

from xsmoe.service.errors import InvalidInput

_CACHE = "_xsmoe_query_names"


def _declared(route: APIRoute) -> frozenset[str]:
    """The route's query parameters, worked out once and kept on the route: walking
    its dependency tree on every request cost about 0.2 ms."""
    found: frozenset[str] | None = getattr(route, _CACHE, None)
    if found is None:
        fields = get_flat_params(route.dependant)
        found = frozenset(f.alias for f in fields if isinstance(f.field_info, params.Query))
        setattr(route, _CACHE, found)
    return found


async def forbid_unknown_query(request: Request) -> None:
    """A router dependency: 422 naming every query parameter the route does not declare."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    unknown = sorted(name[:64] for name in set(request.query_params) - _declared(route))
    if unknown:
        allowed = ", ".join(sorted(_declared(route))) or "none"
        listed = ", ".join(unknown[:10])
        raise InvalidInput(
            f"query.{unknown[0]}: unknown query parameter ({listed}); allowed: {allowed}",
            field=f"query.{unknown[0]}",
        )
