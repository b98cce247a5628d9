"""The client's transport: one httpx connection to /api/v1, answers parsed, errors raised."""

from __future__ import annotations

import threading
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
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


# Errors of a request that never left this machine: another coordinator may take it at once.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


def coordinator_urls(value: str) -> list[str]:
    """The coordinator URLs in ``value``: one, or several separated by commas (coordinators
    sharing one PostgreSQL database), each http:// or https://."""
    urls = [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
    if not urls:
        raise InvalidInput("no coordinator URL given")
    for url in urls:
        try:
            parsed = httpx.URL(url) if "://" in url else None
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise InvalidInput(f"invalid coordinator URL {url!r}: expected http(s)://host:port")
    return urls


TOKEN_FILE_LIMIT = 1024
"""The most bytes a token file may hold (a token is 46 characters)."""


def read_token_file(path: Path) -> str:
    """The token in ``path``: its one line, surrounding whitespace removed."""
    try:
        with path.open("rb") as file:
            data = file.read(TOKEN_FILE_LIMIT + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read the token file {path}: {exc.strerror or exc}") from exc
    if len(data) > TOKEN_FILE_LIMIT:
        raise InvalidInput(f"the token file {path} holds more than {TOKEN_FILE_LIMIT} bytes")
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        token = ""
    if not token or not token.isprintable() or " " in token:
        raise InvalidInput(f"the token file {path} does not hold a token (one line, no spaces)")
    return token


class Transport:
    """Sends requests to a coordinator's /api/v1 with one bearer token.

    ``base_url`` may name several coordinators of one database, separated by commas: requests
    go to one of them; when it cannot be reached, the next one takes over (a request that was
    never sent goes to the next at once; one whose answer was lost raises ``Unavailable``, and
    the caller's retry goes to the next). Each endpoint class of the client derives from it;
    ``Client`` combines them.
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
        self.urls = coordinator_urls(base_url)
        self.base_url = self.urls[0]
        self._failing_over = threading.Lock()
        if http is None:
            limits = httpx.Limits(
                max_connections=100, max_keepalive_connections=20, keepalive_expiry=KEEPALIVE_EXPIRY
            )
            http = httpx.Client(timeout=timeout, transport=transport, limits=limits)
        http.base_url = httpx.URL(self.base_url + "/api/v1/")
        http.headers.update(headers)
        self.http = http
        self._token_file: Path | None = None

    def use_token_file(self, path: Path) -> None:
        """Take the token from ``path``, and read it again when a request is refused with 401:
        an agent whose token was rotated (``servers rotate-token``) goes on with the new one
        once it is written there, without a restart."""
        self._token_file = path
        self.http.headers["Authorization"] = f"Bearer {read_token_file(path)}"

    def _token_file_changed(self) -> bool:
        """Read the token file again; whether it now holds another token (then in use)."""
        if self._token_file is None:
            return False
        try:
            token = read_token_file(self._token_file)
        except InvalidInput:
            return False  # being rewritten, or gone: the refusal stands
        header = f"Bearer {token}"
        if self.http.headers.get("Authorization") == header:
            return False
        self.http.headers["Authorization"] = header
        return True

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def fail_over(self, unreachable: str) -> None:
        """Send the next requests to the coordinator after ``unreachable`` (no-op with one URL,
        or when another thread has moved on from it already)."""
        with self._failing_over:
            if len(self.urls) > 1 and self.base_url == unreachable:
                self.base_url = self.urls[(self.urls.index(unreachable) + 1) % len(self.urls)]
                self.http.base_url = httpx.URL(self.base_url + "/api/v1/")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        tries = len(self.urls)
        reread = False
        while True:
            tries -= 1
            unreachable = self.base_url
            try:
                response = self.http.request(method, path.lstrip("/"), **kwargs)
            except httpx.TransportError as exc:
                self.fail_over(unreachable)
                if tries > 0 and isinstance(exc, _NOT_SENT):
                    continue
                raise Unavailable(f"cannot reach the coordinator at {unreachable}: {exc}") from exc
            if response.status_code == 401 and not reread and self._token_file_changed():
                reread = True  # refused before the body was read: sent again, with the new token
                tries += 1
                continue
            break
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
        error = _BY_STATUS.get(response.status_code)
        if error is None:
            # A server error (500, a proxy's 502 or 504) is passing: callers that retry while
            # the coordinator is away retry it too, and an agent keeps its log lines for later.
            error = Unavailable if response.status_code >= 500 else BuildcoordError
        raise error(str(message))

    @staticmethod
    def _parse(kind: type[T], data: Any) -> T:
        """Validate JSON data into a model (dataclass, list of them, ...)."""
        adapter = _ADAPTERS.get(kind)
        if adapter is None:
            adapter = _ADAPTERS[kind] = TypeAdapter(kind)
        result: T = adapter.validate_python(data)
        return result
