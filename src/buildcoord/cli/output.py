"""How the CLI prints: JSON for scripts, plain aligned lines for people, errors as one line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click
from pydantic import TypeAdapter


def emit_json(value: Any) -> None:
    """Print any model (dataclass, list of them, dict) as indented JSON."""
    data = TypeAdapter(type(value)).dump_python(value, mode="json")
    if isinstance(value, list):
        data = [TypeAdapter(type(item)).dump_python(item, mode="json") for item in value]
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def stamp(moment: datetime | None) -> str:
    """Format a time in UTC as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return "-" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print rows under headers in aligned columns."""
    cells = [[str(header) for header in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
