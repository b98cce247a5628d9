"""The one place that maps errors to HTTP statuses: ``{"error": "<one clear line>"}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from buildcoord.errors import BuildcoordError


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on app."""

    @app.exception_handler(BuildcoordError)
    async def _domain(_request: Request, exc: BuildcoordError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        # Routing's own refusals (unknown path, wrong method) get the same body as ours.
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            loc = tuple(error.get("loc", ()))
            # A missing or unparsable body has the location ("body",) or ("body", offset).
            parts = loc[1:] if loc[:1] == ("body",) and len(loc) > 1 else loc
            if error.get("type") == "json_invalid":
                parts = ("body",)
            where = ".".join(str(part) for part in parts)
            problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else error["msg"])
        return JSONResponse({"error": "invalid request: " + "; ".join(problems)}, 422)

    @app.exception_handler(OperationalError)
    async def _database(_request: Request, exc: OperationalError) -> JSONResponse:
        return JSONResponse({"error": f"database unavailable: {exc.orig}"}, status_code=503)
