"""How one list of routes becomes the methods of both clients.

`Endpoint(calls.recommend)` on a class is a method with `calls.recommend`'s
signature: on a `SyncRunner` it returns the parsed answer, on an `AsyncRunner`
a coroutine of it. The route is written once; only `send` differs.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Generic, ParamSpec, Self, TypeVar, overload

from pydantic import BaseModel

from xsmoe_client.call import Call
from xsmoe_client.models import ItemOut, ItemPage

P = ParamSpec("P")
T = TypeVar("T", bound=BaseModel)
NextPage = Callable[[Call[ItemPage], ItemPage], Call[ItemPage] | None]


class SyncRunner(ABC):
    @abstractmethod
    def send(self, call: Call[T]) -> T:
        """Send `call` (retrying what is safe to retry) and parse the answer."""


class AsyncRunner(ABC):
    @abstractmethod
    async def send(self, call: Call[T]) -> T:
        """Send `call` (retrying what is safe to retry) and parse the answer."""


class Endpoint(Generic[P, T]):
    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: SyncRunner, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, obj: AsyncRunner, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, obj: SyncRunner | AsyncRunner | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build, send = self.build, obj.send

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return send(build(*args, **kwargs))

        return method


class Pager(Generic[P]):
    """Every item of a paged route: an iterator on a SyncRunner, an async iterator on
    an AsyncRunner. A page is fetched when the previous one is used up."""

    def __init__(self, first: Callable[P, Call[ItemPage]], after: NextPage) -> None:
        self.first, self.after = first, after
        self.__doc__ = first.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: SyncRunner, owner: type[Any]) -> Callable[P, Iterator[ItemOut]]: ...
    @overload
    def __get__(
        self, obj: AsyncRunner, owner: type[Any]
    ) -> Callable[P, AsyncIterator[ItemOut]]: ...
    def __get__(self, obj: SyncRunner | AsyncRunner | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        first, after = self.first, self.after

        @functools.wraps(first)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return _pages(obj, first(*args, **kwargs), after)

        return method


def _pages(
    runner: SyncRunner | AsyncRunner, call: Call[ItemPage], after: NextPage
) -> Iterator[ItemOut] | AsyncIterator[ItemOut]:
    if isinstance(runner, AsyncRunner):
        return _async_items(runner, call, after)
    return _items(runner, call, after)


def _items(runner: SyncRunner, call: Call[ItemPage] | None, after: NextPage) -> Iterator[ItemOut]:
    while call is not None:
        page = runner.send(call)
        yield from page.items
        call = after(call, page)


async def _async_items(
    runner: AsyncRunner, call: Call[ItemPage] | None, after: NextPage
) -> AsyncIterator[ItemOut]:
    while call is not None:
        page = await runner.send(call)
        for item in page.items:
            yield item
        call = after(call, page)
