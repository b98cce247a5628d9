"""delegate: a ``Store`` operation that is one sub-store's method, declared in one line.

``claim_job = delegate("jobs", JobStore.claim_for_server)`` gives ``Store`` a method
``claim_job`` that returns ``self.jobs.claim_for_server(...)`` with the same arguments. mypy
checks each call against that sub-store method's parameters and return type; ``help()`` and
``inspect.signature`` show its signature and docstring.

The method is generated from the sub-store method's signature, as ``dataclasses`` generates
``__init__``: its body is the one line a hand-written wrapper would have. So a call costs what
the wrapper cost (CPython 3.11 inlines that Python-to-Python call; a property or ``__get__``
returning the bound sub-store method measured 30 to 100 ns slower a call), and the sub-store's
method is looked up at each call, so one patched on a sub-store or on its class is the one
called.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import FunctionType
from typing import Any, Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

FORWARDED: dict[object, str] = {
    inspect.Parameter.VAR_POSITIONAL: "*{}",
    inspect.Parameter.KEYWORD_ONLY: "{0}={0}",
    inspect.Parameter.VAR_KEYWORD: "**{}",
}
"""How the generated method passes on a parameter of each kind; positional ones by position."""


def delegate(
    sub_store: str, method: Callable[Concatenate[Any, P], R]
) -> Callable[Concatenate[Any, P], R]:
    """A method that calls ``self.<sub_store>.<method>`` with its own arguments, typed as it."""
    if not (sub_store.isidentifier() and isinstance(method, FunctionType)):
        raise TypeError(f"delegate wants an attribute and a function: {sub_store!r}, {method!r}")
    parameters = list(inspect.signature(method).parameters.values())[1:]
    bare = [p.replace(default=p.empty, annotation=p.empty) for p in parameters]
    declared = str(inspect.Signature(bare))[1:-1]
    passed = ", ".join(FORWARDED.get(p.kind, "{}").format(p.name) for p in parameters)
    name = method.__name__
    source = f"def {name}(self, {declared}):\n    return self.{sub_store}.{name}({passed})\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<delegate to {sub_store}.{name}>", "exec"), namespace)
    function: FunctionType = namespace[name]
    function.__defaults__ = method.__defaults__
    function.__kwdefaults__ = method.__kwdefaults__
    function.__annotations__ = dict(method.__annotations__)
    function.__doc__ = method.__doc__
    function.__module__ = method.__module__
    return function
