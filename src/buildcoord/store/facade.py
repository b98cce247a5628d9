"""Delegate: a ``Store`` operation that is one sub-store's method, declared in one line.

``claim_job = Delegate("jobs", JobStore.claim_for_server)`` makes ``store.claim_job`` the
bound method ``store.jobs.claim_for_server``: mypy checks a call against that method's own
parameters and return type, and ``help()`` shows its docstring.

A delegate is a read-only property whose getter is an ``operator.attrgetter``, so the lookup
runs in C with no Python frame of its own (a ``__get__`` written in Python costs more than
the wrapper method it replaces). The sub-store's method is looked up at each access, never
cached, so a method patched on a sub-store or its class is the one called.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

P = ParamSpec("P")
R = TypeVar("R")


class Delegate(property, Generic[P, R]):
    """``instance.<name>`` is ``instance.<sub_store>.<method's name>``, as a bound method."""

    def __init__(self, sub_store: str, method: Callable[Concatenate[Any, P], R]) -> None:
        super().__init__(attrgetter(f"{sub_store}.{method.__name__}"))
        self.__doc__ = method.__doc__

    if TYPE_CHECKING:  # property's own __get__ runs; this only types it for mypy

        @overload
        def __get__(self, instance: None, owner: type[Any], /) -> Delegate[P, R]: ...

        @overload
        def __get__(
            self, instance: object, owner: type[Any] | None = None, /
        ) -> Callable[P, R]: ...

        def __get__(self, instance: object, owner: type[Any] | None = None, /) -> Any: ...
