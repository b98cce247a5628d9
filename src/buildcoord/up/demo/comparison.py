"""The demo's proof of reproducibility: what two servers built from one commit, in lines.

The comparison itself is ``buildcoord.artifacts.comparison`` (the one the coordinator records by
itself when two servers build the same commit); this only words it for the demo's view.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from buildcoord.artifacts.comparison import compare_manifests
from buildcoord.artifacts.manifest import Manifest
from buildcoord.models import ArtifactFile


def compare_builds(
    title: str,
    left: tuple[str, Sequence[ArtifactFile]],
    right: tuple[str, Sequence[ArtifactFile]],
) -> list[str]:
    """Compare two (server, manifest) pairs and word the result (see ``verdict_lines``)."""
    (left_name, left_files), (right_name, right_files) = left, right
    now = datetime.now(UTC)
    comparison = compare_manifests(
        Manifest(files=list(left_files), created_at=now, server=left_name),
        Manifest(files=list(right_files), created_at=now, server=right_name),
        left_name,
        right_name,
    )
    return verdict_lines(title, left_name, right_name, comparison.to_dict())


def verdict_lines(title: str, left: str, right: str, summary: dict[str, Any]) -> list[str]:
    """One line per artifact from a comparison's ``to_dict()``, sorted by path.

    Identical artifacts read ``<title>: build1 and build2 produced identical artifacts
    (sha256 <hex>  <path>)``; anything else says NOT identical and why.
    """
    both = f"{left} and {right}"
    lines: dict[str, str] = {}
    for item in summary.get("common", []):
        path = item["path"]
        if item["status"] == "IDENTICAL":
            lines[path] = (
                f"{title}: {both} produced identical artifacts (sha256 {item['sha256_a']}  {path})"
            )
        else:
            lines[path] = (
                f"{title}: {both} produced NOT identical artifacts: {path} differs "
                f"({left} sha256 {item['sha256_a']}, {right} sha256 {item['sha256_b']})"
            )
    for side, name in (("only_a", left), ("only_b", right)):
        for path in summary.get(side, []):
            lines[path] = f"{title}: {both} produced NOT identical artifacts: {path} only on {name}"
    if not lines:
        return [f"{title}: {both} produced no artifacts to compare"]
    return [lines[path] for path in sorted(lines)]
