"""The one place that maps errors to HTTP statuses: ``{"error": "<one clear line>"}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from buildcoord.errors import BuildcoordError
from buildcoord.web.guard import is_dashboard_path
from buildcoord.web.pages.render import error_page


class ErrorOut(BaseModel):
    """The body of every error answer."""

    error: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "the request body cannot be read (not UTF-8 text)"),
        (401, "no valid bearer token (or, for webhooks, no valid signature)"),
        (403, "the token may not do this"),
        (404, "no such object"),
        (409, "the object's state refuses it"),
        (413, "the request body is too large"),
        (422, "invalid request"),
        (429, "too many failed authentications from this address lately (see Retry-After)"),
        (503, "the database is unavailable"),
    )
}
"""The error answers every route may give, for the OpenAPI document (this replaces
FastAPI's own 422 schema, which describes a body this app never sends)."""


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on app."""

    @app.exception_handler(BuildcoordError)
    async def _domain(request: Request, exc: BuildcoordError) -> Response:
        if is_dashboard_path(request.url.path):
            return error_page(request, exc.status, str(exc))
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        # Routing's own refusals (unknown path, wrong method) get the same body as ours.
        if is_dashboard_path(request.url.path):
            return error_page(request, exc.status_code, str(exc.detail))
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for error in exc.errors():
            loc = tuple(error.get("loc", ()))
            # A missing or unparsable body has the location ("body",) or ("body", offset).
            parts = loc[1:] if loc[:1] == ("body",) and len(loc) > 1 else loc
            if error.get("type") == "json_invalid":
                parts = ("body",)
            where = ".".join(str(part) for part in parts)
            problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else error["msg"])
        message = "invalid request: " + "; ".join(problems)
        if is_dashboard_path(request.url.path):
            return error_page(request, 422, message)
        return JSONResponse({"error": message}, 422)

    @app.exception_handler(OperationalError)
    async def _database(_request: Request, exc: OperationalError) -> JSONResponse:
        return JSONResponse({"error": f"database unavailable: {exc.orig}"}, status_code=503)
