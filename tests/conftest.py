"""Shared fixtures: database URLs for every backend; the store, the clock, the operator and an
origin repository used on every floor; and checks that required backends ran."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import postgres_cluster
from buildcoord.clock import FakeClock
from buildcoord.models import Principal
from buildcoord.store import Store
from gitrepos import make_origin
from postgres_cluster import PostgresServer
from store_rows import StoreState, state_of

# --- database fixtures -------------------------------------------------------------------------

POSTGRES_FIXTURES = frozenset({"postgres_server", "postgres_url"})


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server: $BUILDCOORD_TEST_PG_URL, else a throwaway cluster."""
    with postgres_cluster.postgres_server() as server:
        yield server


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file inside this test's tmp dir."""
    return f"sqlite:///{tmp_path}/buildcoord.db"


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh empty PostgreSQL database, dropped after the test (plain `postgresql://` URL)."""
    with postgres_server.fresh_database() as url:
        yield url


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database URL, once per backend."""
    fixture = "postgres_url" if request.param == "postgresql" else "sqlite_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session, copied for each test instead of migrating."""
    path = tmp_path_factory.mktemp("template") / "buildcoord.db"
    Store.open(f"sqlite:///{path}").close()  # the last close checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def migrated_postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """One PostgreSQL database migrated once per session; tests get it emptied."""
    with postgres_server.fresh_database() as url:
        Store.open(url).close()
        yield url


def _empty_postgres_tables(url: str) -> None:
    """Delete every row (keeping the schema and its revision) and restart the id sequences."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ]
        conn.execute(
            "TRUNCATE " + ", ".join(f'"{name}"' for name in tables) + " RESTART IDENTITY CASCADE"
        )


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ]
)
def migrated_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database at the current schema, once per backend, without migrating each time.

    Tests that need a database with no schema at all (migration tests) use ``db_url``.
    """
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("migrated_sqlite_file")
        target = tmp_path / "buildcoord.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("migrated_postgres_database")
    _empty_postgres_tables(url)
    return url


# --- the store, the clock and the operator -----------------------------------------------------


@pytest.fixture
def store(migrated_db_url: str) -> Iterator[Store]:
    """A migrated store on an empty database of each backend."""
    opened = Store.open(migrated_db_url)  # still checks that the schema is current
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def store_state(store: Store) -> StoreState:
    """Read every row of every table, to prove that a refused action changed nothing."""
    return lambda: state_of(store)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when a test advances it."""
    return FakeClock()


@pytest.fixture
def operator() -> Principal:
    """The operator, allowed to administer everything, as the services see it.

    The API, CLI and agent floors override it with a Client holding the admin token
    (tests/inprocess.py): the same person, seen over HTTP.
    """
    return Principal("operator", "admin")


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A git repository with one commit on main, for branches to be set up from."""
    return make_origin(tmp_path / "origin")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use PostgreSQL fixtures directly, so `-m postgresql` selects them."""
    for item in items:
        if POSTGRES_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgresql)


# --- required backends -------------------------------------------------------------------------


@dataclass
class RequiredMarker:
    """Fail the session when `env_var`=1 and no test carrying `marker` passed."""

    env_var: str
    marker: str
    label: str
    outcomes: dict[str, int] = field(default_factory=dict)

    def enabled(self) -> bool:
        """Whether the environment asks for this marker's tests to have run."""
        return os.environ.get(self.env_var, "").strip() == "1"

    def record(self, report: pytest.TestReport) -> None:
        """Count the outcome of a marked test's call phase (or a failed/skipped setup)."""
        if self.marker not in report.keywords:
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.outcomes[report.outcome] = self.outcomes.get(report.outcome, 0) + 1

    def problem(self) -> str | None:
        """Return why the requirement is unmet, or None when it is met or not asked for."""
        if not self.enabled() or self.outcomes.get("passed", 0) > 0:
            return None
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.outcomes.items()))
        return (
            f"{self.label} tests did not run: no test marked '{self.marker}' passed "
            f"({counts or 'none selected'}), but {self.env_var}=1 requires at least one."
        )


# Adding a required backend is one line here (plus its marker in pyproject.toml), e.g.
# RequiredMarker("BUILDCOORD_REQUIRE_BROWSER", "browser", "Browser"),
REQUIRED_MARKERS = [
    RequiredMarker("BUILDCOORD_REQUIRE_POSTGRES", "postgresql", "PostgreSQL"),
    RequiredMarker("BUILDCOORD_REQUIRE_BROWSER", "browser", "Browser"),
    RequiredMarker("BUILDCOORD_REQUIRE_ROOT", "root", "Root-only fault"),
]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Track outcomes of tests carrying a required marker."""
    for required in REQUIRED_MARKERS:
        required.record(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail an otherwise green session when a required backend's tests did not pass."""
    problems = [p for p in (r.problem() for r in REQUIRED_MARKERS) if p]
    if not problems:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for problem in problems:
        if reporter is not None:
            reporter.write_line(problem, red=True, bold=True)
        else:
            print(problem)
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
