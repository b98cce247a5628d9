"""JSON answers the routes build themselves: the one way a route serialises a record.

A route that returns a model lets FastAPI validate it again (a thread-pool hop) and then
serialise it. The hot routes (claim, a job, the job list) and the routes that answer either a
record or 204 build their body here instead, once, in the thread that made the record, with
the same bytes as FastAPI's own rendering of the route's ``response_model``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import TypeAdapter

JSON = "application/json"


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(shape: Any) -> TypeAdapter[Any]:
    """One adapter per shape, built on first use (building one costs a schema walk)."""
    adapter = _ADAPTERS.get(shape)
    if adapter is None:
        adapter = _ADAPTERS[shape] = TypeAdapter(shape)
    return adapter


def record(value: Any) -> Response:
    """value (a model) as its JSON."""
    return Response(_adapter(type(value)).dump_json(value, by_alias=True), media_type=JSON)


def record_or_no_content(value: Any | None) -> Response:
    """value as its JSON, or 204 No Content where there is none."""
    return Response(status_code=204) if value is None else record(value)


def plain(value: Any) -> dict[str, Any]:
    """value (a model) as JSON-ready Python, for a route that adds fields to it."""
    result: dict[str, Any] = _adapter(type(value)).dump_python(value, mode="json", by_alias=True)
    return result


def rows(items: list[dict[str, Any]]) -> Response:
    """JSON-ready rows (from plain) as one JSON array."""
    return Response(_adapter(list[dict[str, Any]]).dump_json(items), media_type=JSON)
