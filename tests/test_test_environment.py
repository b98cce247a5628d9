"""The test environment itself: real databases per backend, and the required-backend check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import sqlalchemy as sa

from postgres_cluster import PostgresServer

TESTS_DIR = Path(__file__).resolve().parent


def sqlalchemy_url(url: str) -> str:
    """Turn a plain `postgresql://` URL into one using SQLAlchemy's psycopg 3 driver."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def table_names(url: str) -> list[str]:
    """List the tables in a database through SQLAlchemy."""
    engine = sa.create_engine(sqlalchemy_url(url))
    try:
        return sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_postgres_server_accepts_connections_and_reports_its_version(
    postgres_server: PostgresServer,
) -> None:
    with postgres_server.connect() as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
        encoding = conn.execute("SHOW server_encoding").fetchone()
    assert row is not None
    assert int(str(row[0])) >= 130000, "DROP DATABASE ... WITH (FORCE) needs PostgreSQL 13+"
    assert encoding == ("UTF8",)


def test_each_postgres_test_gets_a_fresh_empty_database(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    assert table_names(postgres_url) == []
    engine = sa.create_engine(sqlalchemy_url(postgres_url))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE marker (id integer PRIMARY KEY)"))
    finally:
        engine.dispose()
    assert table_names(postgres_url) == ["marker"]

    with postgres_server.fresh_database() as second_url:
        assert second_url != postgres_url
        assert table_names(second_url) == []


def test_postgres_url_is_a_plain_url_on_localhost_without_driver_suffix(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    assert postgres_url.startswith("postgresql://")
    dbname = postgres_url.rsplit("/", 1)[1]
    assert dbname.startswith("bc_")
    assert postgres_url == postgres_server.url_for(dbname)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (dbname,)


def test_dropping_a_database_works_while_connections_are_still_open(
    postgres_server: PostgresServer,
) -> None:
    dbname = postgres_server.create_database()
    leftover = psycopg.connect(postgres_server.url_for(dbname))
    try:
        postgres_server.drop_database(dbname)
    finally:
        leftover.close()
    with postgres_server.connect() as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
        assert found.fetchone() is None


def test_sqlite_url_points_into_the_test_tmp_dir(sqlite_url: str, tmp_path: Path) -> None:
    assert sqlite_url == f"sqlite:///{tmp_path}/buildcoord.db"
    assert table_names(sqlite_url) == []
    assert (tmp_path / "buildcoord.db").exists()


def test_db_url_gives_a_working_empty_database_for_each_backend(db_url: str) -> None:
    assert table_names(db_url) == []
    engine = sa.create_engine(sqlalchemy_url(db_url))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE job (id integer PRIMARY KEY, name text)"))
            conn.execute(sa.text("INSERT INTO job VALUES (1, 'compile')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM job")).scalar_one() == "compile"
    finally:
        engine.dispose()


# --- BUILDCOORD_REQUIRE_POSTGRES and _BROWSER, checked in a separate pytest process ------------

INNER_PYPROJECT = """\
[tool.pytest.ini_options]
addopts = "--strict-markers -p no:cacheprovider"
markers = ["postgresql: needs PostgreSQL", "browser: needs Chromium"]
"""

INNER_TESTS = """\
import pytest

def test_plain():
    pass

@pytest.mark.postgresql
def test_marked():
    pass

@pytest.mark.browser
def test_browser_marked():
    pass
"""


def run_inner_session(
    tmp_path: Path, require: str, *args: str, variable: str = "BUILDCOORD_REQUIRE_POSTGRES"
) -> subprocess.CompletedProcess[str]:
    """Run a tiny pytest session that uses this directory's conftest, with variable=require."""
    # The conftest and the modules it imports.
    for name in ("conftest.py", "postgres_cluster.py", "gitrepos.py", "store_rows.py"):
        shutil.copy(TESTS_DIR / name, tmp_path / name)
    (tmp_path / "pyproject.toml").write_text(INNER_PYPROJECT)
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TESTS))
    # Only the requirement under test: scripts/test sets them all for the outer session.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUILDCOORD_REQUIRE_")}
    env[variable] = require
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_requiring_postgres_fails_a_green_session_when_no_postgres_test_passed(
    tmp_path: Path,
) -> None:
    result = run_inner_session(tmp_path, "1", "-m", "not postgresql")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PostgreSQL tests did not run:" in result.stdout


def test_requiring_postgres_passes_when_a_postgres_test_passed(tmp_path: Path) -> None:
    result = run_inner_session(tmp_path, "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "did not run" not in result.stdout


def test_postgres_is_not_required_unless_asked(tmp_path: Path) -> None:
    result = run_inner_session(tmp_path, "", "-m", "not postgresql")
    assert result.returncode == 0, result.stdout + result.stderr


def test_requiring_the_browser_fails_a_green_session_when_no_browser_test_passed(
    tmp_path: Path,
) -> None:
    result = run_inner_session(
        tmp_path, "1", "-m", "not browser", variable="BUILDCOORD_REQUIRE_BROWSER"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Browser tests did not run:" in result.stdout


def test_requiring_the_browser_passes_when_a_browser_test_passed(tmp_path: Path) -> None:
    result = run_inner_session(tmp_path, "1", variable="BUILDCOORD_REQUIRE_BROWSER")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "did not run" not in result.stdout
