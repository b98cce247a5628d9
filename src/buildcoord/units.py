"""Quantities written for people: byte counts with binary units."""

from __future__ import annotations


def human_bytes(value: int | None) -> str:
    """Format a byte count with a binary unit."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
