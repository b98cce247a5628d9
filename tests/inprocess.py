"""The real coordinator in process, for API and CLI tests: real store, fake clock, no sockets.

tests/api/conftest.py, tests/cli/conftest.py and tests/agent/conftest.py import these fixtures;
the types and helpers here are imported by the tests themselves. The store, its state and the
clock come from tests/conftest.py, as on every floor; ``operator`` here overrides the root's
Principal with a Client holding the admin token.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from buildcoord.cli import cli
from buildcoord.client import Client
from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from buildcoord.web.app import create_app

with warnings.catch_warnings():
    # Starlette asks for httpx2, but buildcoord's Client is typed on httpx and must get an
    # httpx.Client; with plain httpx installed, TestClient is exactly that.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ADMIN_TOKEN = "test-admin-token-0123456789"
BASE_URL = "http://testserver"
API = "/api/v1"
SQLITE_PREFIX = "sqlite:///"

Connect = Callable[[str | None], Client]


@dataclass(frozen=True)
class Agent:
    """A registered server: its name, its agent token and a Client that uses the token."""

    name: str
    token: str
    client: Client


RegisterAgent = Callable[..., Agent]


def bearer(token: str) -> dict[str, str]:
    """Headers that authenticate a raw request with token."""
    return {"Authorization": f"Bearer {token}"}


def with_value(body: Any, value: object) -> Any:
    """A request body template with every "VALUE" in it replaced by value."""
    if body == "VALUE":
        return value
    if isinstance(body, dict):
        return {key: with_value(item, value) for key, item in body.items()}
    if isinstance(body, list):
        return [with_value(item, value) for item in body]
    return body


def error_of(response: httpx.Response, status: int) -> str:
    """Assert response is an error of status with a ``{"error": "<one line>"}`` body; return it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"], body
    message = body["error"]
    assert isinstance(message, str)
    assert message.strip()
    assert "\n" not in message
    return message


# --- the coordinator --------------------------------------------------------------------------


@pytest.fixture
def settings() -> Settings:
    """Default settings with a known admin token; failed authentications are not slowed down
    (every request of a test comes from one address, and many are refused on purpose:
    tests/api/test_auth_throttle.py tests the slowing down)."""
    return Settings(admin_token=ADMIN_TOKEN, auth_failures_allowed=0)


@pytest.fixture
def coordinator(store: Store, settings: Settings, clock: FakeClock) -> Coordinator:
    """Every service over the test's store, started (the admin token is live)."""
    services = Coordinator(store, settings, clock)
    services.start()
    return services


@pytest.fixture
def app(coordinator: Coordinator) -> FastAPI:
    """The real FastAPI app (no background maintenance: tests call the step endpoint)."""
    return create_app(coordinator)


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    """A raw HTTP client for status codes and headers; requests carry no token by default."""
    with TestClient(app, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def connect(app: FastAPI) -> Iterator[Connect]:
    """Open a typed buildcoord Client with a token, talking to the app in process."""
    with ExitStack() as stack:

        def open_client(token: str | None) -> Client:
            # Entered, a TestClient keeps one event-loop thread instead of one per request.
            http = stack.enter_context(TestClient(app, base_url=BASE_URL))
            return Client(BASE_URL, token, http=http)

        yield open_client


@pytest.fixture
def operator(connect: Connect) -> Client:
    """A Client holding the admin (operator) token."""
    return connect(ADMIN_TOKEN)


@pytest.fixture
def register_agent(operator: Client, connect: Connect) -> RegisterAgent:
    """Register a server (``register_agent("build1", ["mvn"])``) and return its Agent."""

    def register(name: str = "build1", labels: Sequence[str] = ()) -> Agent:
        _server, token = operator.register_server(name, labels)
        return Agent(name=name, token=token, client=connect(token))

    return register


# --- the command line -------------------------------------------------------------------------


@dataclass(frozen=True)
class CliOutcome:
    """What one CLI invocation printed and how it exited."""

    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def last_line(self) -> str:
        """The last line on stdout (where ids, tokens and fencing tokens go)."""
        assert self.exit_code == 0, (self.exit_code, self.stdout, self.stderr, self.exception)
        lines = self.stdout.strip().splitlines()
        assert lines, "nothing on stdout"
        return lines[-1]

    def json(self) -> Any:
        """Parse stdout as JSON (for --json read commands)."""
        assert self.exit_code == 0, (self.exit_code, self.stdout, self.stderr, self.exception)
        return json.loads(self.stdout)

    @property
    def error(self) -> str:
        """Assert a failure reported as one ``error: ...`` line on stderr; return that line."""
        assert self.exit_code != 0, self.stdout
        assert isinstance(self.exception, SystemExit), repr(self.exception)  # not a crash
        lines = self.stderr.splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("error: "), self.stderr
        return lines[0]


RunCli = Callable[..., CliOutcome]

# Keep the developer's shell from leaking into the tests.
CLEAN_ENV: dict[str, str | None] = {
    "BUILDCOORD_URL": None,
    "BUILDCOORD_TOKEN": None,
    "BUILDCOORD_CONFIG": None,
}


def invoke_cli(
    args: Sequence[str], *, obj: dict[str, Any] | None = None, input: str | None = None
) -> CliOutcome:
    """Run the buildcoord CLI in process and capture stdout and stderr apart."""
    result = CliRunner().invoke(cli, list(args), obj=obj, input=input, env=CLEAN_ENV)
    return CliOutcome(result.exit_code, result.stdout, result.stderr, result.exception)


@pytest.fixture
def run_cli(app: FastAPI) -> RunCli:
    """Run ``buildcoord ARGS`` against the app in process, by default with the admin token."""

    def factory(url: str, token: str | None) -> Client:
        return Client(url, token, http=TestClient(app, base_url=BASE_URL))

    def run(*args: str, token: str | None = ADMIN_TOKEN, input: str | None = None) -> CliOutcome:
        prefix = ["--token", token] if token is not None else []
        return invoke_cli([*prefix, *args], obj={"client_factory": factory}, input=input)

    return run
