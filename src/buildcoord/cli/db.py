"""buildcoord db upgrade: bring a database's schema up to date (serve also does it at start)."""

from __future__ import annotations

import click

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
