"""What every command gets: a Client for the coordinator named by flags or environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click

from buildcoord.client import Client

DEFAULT_URL = "http://127.0.0.1:8765"

ClientFactory = Callable[[str, str | None], Client]


@dataclass
class CliContext:
    """Global options, resolved once."""

    url: str
    token: str | None
    config: str | None
    factory: ClientFactory
    token_file: Path | None = None

    def client(self) -> Client:
        """Open a client (tests inject an in-process factory)."""
        client = self.factory(self.url, self.token)
        if self.token_file is not None:
            try:
                client.use_token_file(self.token_file)
            except BaseException:
                client.close()
                raise
        return client


def get_context() -> CliContext:
    """Return the CliContext of the running command."""
    found = click.get_current_context().find_object(CliContext)
    if found is None:  # pragma: no cover - only when a command runs outside main()
        raise click.UsageError("internal: no CLI context")
    return found


F = TypeVar("F", bound=Callable[..., object])


def json_option(function: F) -> F:
    """Add --json to a read command."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(function)


def split_list(value: str | None) -> list[str]:
    """Split 'a,b, c' into ['a', 'b', 'c']."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]
