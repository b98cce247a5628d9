"""The client's transport: one httpx connection to /api/v1, answers parsed, errors raised."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any, Self, TypeVar

import httpx
from pydantic import TypeAdapter

from buildcoord.errors import (
    BuildcoordError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
)

T = TypeVar("T")

# An idle pooled connection is kept this long (httpx's default is 5 s, the agent's heartbeat
# interval: every heartbeat would open a new connection). Below serve's keep-alive (75 s,
# cli/serve.py KEEP_ALIVE_SECONDS), so that the client, not the server, closes an idle one.
KEEPALIVE_EXPIRY = 60.0

_BY_STATUS: dict[int, type[BuildcoordError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
    400: InvalidInput,
    503: Unavailable,
}
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}

# The transport errors of a connection closed or reset before an answer came (the server
# closing a kept-alive connection as the request went out, or a refused reconnect).
_CONNECTION_LOST = (
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.ConnectError,
)


def connection_lost(error: BaseException) -> bool:
    """Whether a request failed with Unavailable because its connection was closed or reset.

    No answer came, so a request that is safe to repeat (idempotent) may be sent again at
    once. An error answer of the server (even 503) is not a lost connection.
    """
    return isinstance(error, Unavailable) and isinstance(error.__cause__, _CONNECTION_LOST)


class Transport:
    """Sends requests to one coordinator's /api/v1 with one bearer token.

    Each endpoint class of the client derives from it; ``Client`` combines them.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        """Connect to base_url; tests pass ``http`` (a Starlette TestClient) to skip sockets."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        if http is None:
            limits = httpx.Limits(
                max_connections=100, max_keepalive_connections=20, keepalive_expiry=KEEPALIVE_EXPIRY
            )
            http = httpx.Client(timeout=timeout, transport=transport, limits=limits)
        http.base_url = httpx.URL(self.base_url + "/api/v1/")
        http.headers.update(headers)
        self.http = http

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path.lstrip("/"), **kwargs)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the coordinator at {self.base_url}: {exc}") from exc
        self._note_date(response)
        if response.status_code == 204:
            return None
        if response.is_success:
            return response.json()
        self._raise_for(response)

    clock_skew_seconds: float | None = None
    """This machine's clock minus the coordinator's, from the Date of the last answer (the
    header has whole seconds: the figure is within about a second, plus the answer's trip)."""

    def _note_date(self, response: httpx.Response) -> None:
        date = response.headers.get("date")
        if date is None:
            return
        try:
            sent = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        # Date is truncated to the second: its middle is half a second later.
        self.clock_skew_seconds = round(time.time() - (sent + 0.5), 3)

    def _raise_for(self, response: httpx.Response) -> Any:
        """Raise the error class matching a failed response, with the server's message."""
        try:
            message = response.json().get("error") or response.text
        except ValueError:
            message = response.text or response.reason_phrase
        error = _BY_STATUS.get(response.status_code, BuildcoordError)
        raise error(str(message))

    @staticmethod
    def _parse(kind: type[T], data: Any) -> T:
        """Validate JSON data into a model (dataclass, list of them, ...)."""
        adapter = _ADAPTERS.get(kind)
        if adapter is None:
            adapter = _ADAPTERS[kind] = TypeAdapter(kind)
        result: T = adapter.validate_python(data)
        return result
