"""buildcoord up: the command's options; the program is ``buildcoord.up``."""

from __future__ import annotations

from pathlib import Path

import click

from buildcoord.cli.context import get_context
from buildcoord.cli.serve import ensure_admin_token
from buildcoord.config import load_settings
from buildcoord.store.engine import default_home
from buildcoord.up.run import run


@click.command("up")
@click.option(
    "--agents",
    "count",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Local agents to run (servers build1, build2, ...).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8765,
    show_default=True,
    help="Coordinator port on 127.0.0.1.",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Database, tokens, logs and demo (env BUILDCOORD_HOME; ~/.local/share/buildcoord).",
)
@click.option("--demo", is_flag=True, help="Build a sample repository on two servers.")
def up(count: int, port: int, home: Path | None, demo: bool) -> None:
    """Run a coordinator (SQLite) and N local agents with a live status; Ctrl-C stops them."""
    if demo and count < 2:
        raise click.UsageError("--demo builds on two servers: use --agents 2 or more")
    config = get_context().config

    def admin_token() -> tuple[str, str]:
        # Read once the home is in the environment: serve's rule finds the token there.
        return ensure_admin_token(load_settings(config_path=config))

    run((home or default_home()).expanduser().resolve(), count, port, demo, config, admin_token)
