"""Compare what two servers built from one commit: the demo's proof of reproducibility."""

from __future__ import annotations

from collections.abc import Sequence

from buildcoord.models import ArtifactFile


def _checksums(manifest: Sequence[ArtifactFile]) -> dict[str, str]:
    return {item.path: item.sha256 or "" for item in manifest if item.kind == "file"}


def compare_builds(
    title: str,
    left: tuple[str, Sequence[ArtifactFile]],
    right: tuple[str, Sequence[ArtifactFile]],
) -> list[str]:
    """One line per artifact saying whether both servers produced the same SHA-256.

    ``title`` names what was built (``main @ 1a2b3c4d5e6f``); ``left`` and ``right`` are
    (server, manifest). Identical artifacts read ``<title>: build1 and build2 produced
    identical artifacts (sha256 <hex>  <path>)``; anything else says NOT identical and why.
    """
    (left_name, left_manifest), (right_name, right_manifest) = left, right
    ours, theirs = _checksums(left_manifest), _checksums(right_manifest)
    both = f"{left_name} and {right_name}"
    if not ours and not theirs:
        return [f"{title}: {both} produced no artifacts to compare"]
    lines = []
    for path in sorted(ours.keys() | theirs.keys()):
        mine, other = ours.get(path), theirs.get(path)
        if mine is not None and mine == other:
            lines.append(f"{title}: {both} produced identical artifacts (sha256 {mine}  {path})")
        elif mine is None or other is None:
            alone = left_name if other is None else right_name
            lines.append(
                f"{title}: {both} produced NOT identical artifacts: {path} only on {alone}"
            )
        else:
            lines.append(
                f"{title}: {both} produced NOT identical artifacts: {path} differs "
                f"({left_name} sha256 {mine}, {right_name} sha256 {other})"
            )
    return lines
