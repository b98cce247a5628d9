"""buildcoord db upgrade|backup|copy: the schema brought up to date (serve also does it at
start), an online SQLite backup, every row copied into another database."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click

from buildcoord.store.copying import backup_sqlite, copy_database
from buildcoord.store.engine import default_url, make_engine
from buildcoord.store.migrate import current_revision, upgrade


@click.group("db")
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--db", "url", envvar="BUILDCOORD_DB", help="Database URL (env BUILDCOORD_DB).")
def upgrade_(url: str | None) -> None:
    """Apply every pending migration."""
    engine = make_engine(url or default_url())
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"Database is up to date (revision {after})")
    else:
        click.echo(f"Upgraded database from {before or 'empty'} to {after}")


def _progress(label: str) -> Callable[[str, int, int], None]:
    """A progress line on stderr that rewrites itself, one per table (or the page count)."""
    shown: dict[str, float] = {}

    def show(what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - shown.get(what, 0.0) < 0.5:
            return
        shown[what] = now
        end = "\n" if done >= total else "\r"
        click.echo(f"{label} {what}: {done:,} of {total:,}", err=True, nl=False)
        click.echo(end, err=True, nl=False)

    return show


@db.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--db", "url", envvar="BUILDCOORD_DB", help="Database URL (env BUILDCOORD_DB).")
def backup(target: Path, url: str | None) -> None:
    """Copy the SQLite database to TARGET (a new file) while the coordinator runs, with
    SQLite's online backup API; the copy is integrity-checked. For PostgreSQL use pg_dump."""
    engine = make_engine(url or default_url())
    try:
        size = backup_sqlite(engine, target, _progress("backup"))
    finally:
        engine.dispose()
    click.echo(f"Backed up to {target} ({size / 1024**2:.1f} MiB, integrity check ok)")


@db.command("copy")
@click.option("--from", "source", required=True, help="The database to copy (a URL).")
@click.option("--to", "target", required=True, help="An empty database to copy into (a URL).")
def copy(source: str, target: str) -> None:
    """Copy every row from one database into an empty one (SQLite to PostgreSQL, say), in
    one transaction; stop the coordinators first."""
    copied = copy_database(source, target, _progress("copying"))
    click.echo(f"Copied {sum(copied.values()):,} rows in {len(copied)} tables")
