"""The ``buildcoord`` command line: nouns and verbs over the HTTP client."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from buildcoord import __version__
from buildcoord.cli.context import DEFAULT_URL, CliContext, ClientFactory
from buildcoord.client import Client
from buildcoord.errors import BuildcoordError


def _default_factory(url: str, token: str | None) -> Client:
    return Client(url, token)


class Group(click.Group):
    """A click group that loads its commands lazily and turns every BuildcoordError into one
    line on stderr and exit 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS and name not in self.commands:
            module_name, attribute = LAZY_COMMANDS[name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            self.add_command(command, name)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BuildcoordError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="buildcoord")
@click.option(
    "--url",
    envvar="BUILDCOORD_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Coordinator URL (env BUILDCOORD_URL); several coordinators of one PostgreSQL "
    "database separated by commas: the next takes over when one cannot be reached.",
)
@click.option("--token", envvar="BUILDCOORD_TOKEN", help="API token (env BUILDCOORD_TOKEN).")
@click.option(
    "--token-file",
    envvar="BUILDCOORD_TOKEN_FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the API token from this file instead (env BUILDCOORD_TOKEN_FILE); read again "
    "when it is refused, so that an agent takes a rotated token without a restart.",
)
@click.option(
    "--config",
    envvar="BUILDCOORD_CONFIG",
    type=click.Path(dir_okay=False),
    help="buildcoord.toml (env BUILDCOORD_CONFIG).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    url: str,
    token: str | None,
    token_file: Path | None,
    config: str | None,
) -> None:
    """Coordinate builds across a fleet of build servers."""
    factory: ClientFactory = (ctx.obj or {}).get("client_factory", _default_factory)
    if token is not None and token_file is not None:
        raise click.UsageError("give --token or --token-file, not both")
    ctx.obj = CliContext(
        url=url, token=token, config=config, factory=factory, token_file=token_file
    )


# Each command's module is imported when the command runs, not at start: `buildcoord log event`
# inside a build must not pay for SQLAlchemy, uvicorn or Rich.
LAZY_COMMANDS = {
    "servers": "buildcoord.cli.servers:servers",
    "branches": "buildcoord.cli.branches:branches",
    "queue": "buildcoord.cli.queue:queue",
    "log": "buildcoord.cli.logs:log",
    "lock": "buildcoord.cli.locks:lock",
    "msg": "buildcoord.cli.messages:msg",
    "token": "buildcoord.cli.tokens:token",
    "agent": "buildcoord.cli.agent:agent",
    "up": "buildcoord.cli.up:up",
    "serve": "buildcoord.cli.serve:serve",
    "config": "buildcoord.cli.serve:config",
    "db": "buildcoord.cli.db:db",
    "rollback": "buildcoord.cli.rollback:rollback",
    "artifacts": "buildcoord.cli.artifacts:artifacts",
    "compare": "buildcoord.cli.comparisons:compare",
    "predict": "buildcoord.cli.prediction:predict",
    "alerts": "buildcoord.cli.alerts:alerts",
    "health": "buildcoord.cli.health:health",
    "legacy": "buildcoord.cli.legacy:legacy",
    "events": "buildcoord.cli.events:events",
}


def main() -> None:
    """Console-script entry point: every failure is one ``error:`` line on stderr."""
    try:
        code = cli.main(prog_name="buildcoord", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
