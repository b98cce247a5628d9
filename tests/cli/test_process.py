"""What works without a coordinator: db upgrade, --version, and reporting an unreachable URL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from buildcoord import __version__
from buildcoord.store.engine import make_engine
from buildcoord.store.migrate import current_revision
from inprocess import invoke_cli


def revision_of(url: str) -> str | None:
    """The schema revision a database is at."""
    engine = make_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def test_db_upgrade_migrates_an_empty_database_and_prints_the_revision(db_url: str) -> None:
    outcome = invoke_cli(["db", "upgrade", "--db", db_url])
    revision = revision_of(db_url)
    assert revision is not None
    assert outcome.last_line == f"Upgraded database from empty to {revision}"


def test_db_upgrade_of_a_current_database_says_it_is_up_to_date(db_url: str) -> None:
    invoke_cli(["db", "upgrade", "--db", db_url])
    outcome = invoke_cli(["db", "upgrade", "--db", db_url])
    assert outcome.last_line == f"Database is up to date (revision {revision_of(db_url)})"


def test_db_upgrade_of_an_unsupported_url_is_one_error_line() -> None:
    assert "unsupported database" in invoke_cli(["db", "upgrade", "--db", "mysql://x/y"]).error


def test_an_unreachable_coordinator_is_one_error_line() -> None:
    outcome = invoke_cli(["--url", "http://127.0.0.1:9", "--token", "x", "queue", "list"])
    assert "cannot reach the coordinator at http://127.0.0.1:9" in outcome.error


def test_python_m_buildcoord_prints_the_version() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "buildcoord", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"buildcoord, version {__version__}"


def run_buildcoord(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point as a process."""
    return subprocess.run(
        [sys.executable, "-m", "buildcoord", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_usage_error_is_one_error_line_naming_the_help_command() -> None:
    result = run_buildcoord("queue", "add", "main", "abc1234", "--priority", "x")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: Invalid value for '--priority'")
    assert "buildcoord queue add --help" in lines[0]


def test_an_unknown_option_is_one_error_line() -> None:
    result = run_buildcoord("queue", "list", "--bogus")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: No such option '--bogus'. (see 'buildcoord queue list --help')"
    ]


def test_db_backup_and_db_copy_show_their_progress_and_what_they_did(
    sqlite_url: str, postgres_url: str, tmp_path: Path
) -> None:
    invoke_cli(["db", "upgrade", "--db", sqlite_url])
    backed = invoke_cli(["db", "backup", str(tmp_path / "b.db"), "--db", sqlite_url])
    assert "integrity check ok" in backed.last_line
    assert "backup pages:" in backed.stderr
    again = invoke_cli(["db", "backup", str(tmp_path / "b.db"), "--db", sqlite_url])
    assert "never overwrites" in again.error
    copied = invoke_cli(["db", "copy", "--from", sqlite_url, "--to", postgres_url])
    assert copied.last_line.startswith("Copied ")
    assert "copying jobs: 0 of 0" in copied.stderr
    assert revision_of(postgres_url) == revision_of(sqlite_url)
