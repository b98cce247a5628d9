"""Comparison: our verdict agrees with diffoscope's, counts are right, reports are complete."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from buildcoord.artifacts.comparison import (
    compare_manifests,
    deep_diff,
    diffoscope_command,
    render_markdown,
    render_text,
    signed_bytes,
)
from buildcoord.artifacts.manifest import Manifest, create_manifest
from buildcoord.models import ArtifactFile

MOMENT = datetime(2025, 11, 3, 12, 0, 0, tzinfo=UTC)


def diffoscope() -> list[str]:
    command = diffoscope_command()
    assert command is not None, "diffoscope is part of the dev extras: pip install -e '.[dev]'"
    return command


def tarball(mtime: int) -> bytes:
    """A .tar.gz of one file whose member mtime is the only thing that varies."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        data = b"#!/bin/sh\necho hello\n"
        info = tarfile.TarInfo("greet/bin/greet")
        info.size, info.mtime, info.mode = len(data), mtime, 0o755
        archive.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as compressed:
        compressed.write(raw.getvalue())
    return packed.getvalue()


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    root.mkdir()
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


BASE = {
    "greet_1.0_all.deb": b"!<arch>\ndebian-binary   " + bytes(range(256)),
    "docs/README": b"hello\n" * 100,
    "greet-1.0.tar.gz": tarball(1_700_000_000),
}

Change = Callable[[dict[str, bytes]], dict[str, bytes]]


def flip_a_byte(files: dict[str, bytes]) -> dict[str, bytes]:
    data = bytearray(files["docs/README"])
    data[42] ^= 0x01
    return files | {"docs/README": bytes(data)}


PAIRS: dict[str, tuple[Change, bool]] = {
    "identical trees": (lambda files: dict(files), True),
    "one flipped byte": (flip_a_byte, False),
    "tarballs differing only in mtimes": (
        lambda files: files | {"greet-1.0.tar.gz": tarball(1_700_000_001)},
        False,
    ),
    "a missing file": (lambda files: {k: v for k, v in files.items() if k != "docs/README"}, False),
    "an extra file": (lambda files: files | {"docs/CHANGES": b"new\n"}, False),
    "a renamed file": (
        lambda files: {k.replace("README", "README.txt"): v for k, v in files.items()},
        False,
    ),
}


@pytest.mark.parametrize("case", list(PAIRS))
def test_the_verdict_equals_diffoscopes_exit_status(tmp_path: Path, case: str) -> None:
    change, reproducible = PAIRS[case]
    write_tree(tmp_path / "a", BASE)
    write_tree(tmp_path / "b", change(dict(BASE)))
    comparison = compare_manifests(
        create_manifest(tmp_path / "a", created_at=MOMENT),
        create_manifest(tmp_path / "b", created_at=MOMENT),
        "a",
        "b",
    )
    result = subprocess.run(
        [
            *diffoscope(),
            "--no-progress",
            "--exclude-directory-metadata=yes",
            str(tmp_path / "a"),
            str(tmp_path / "b"),
        ],
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr
    assert comparison.reproducible is reproducible
    assert (0 if comparison.reproducible else 1) == result.returncode


def manifest(*files: ArtifactFile, branch: str = "main", commit: str = "abc") -> Manifest:
    return Manifest(files=list(files), created_at=MOMENT, branch=branch, commit=commit)


def file(path: str, sha: str, size: int) -> ArtifactFile:
    return ArtifactFile(path=path, size=size, md5="0" * 32, sha256=sha * 64, sha512="0" * 128)


def test_disjoint_manifests_count_zero_in_common() -> None:
    a, b = manifest(file("x", "a", 1)), manifest(file("y", "a", 1))
    comparison = compare_manifests(a, b, "A", "B")
    counts = comparison.to_dict()["counts"]
    assert counts == {
        "common": 0,
        "only_a": 1,
        "only_b": 1,
        "identical": 0,
        "different": 0,
        "size_differences": 0,
    }
    assert comparison.verdict == "NOT REPRODUCIBLE"


def test_two_empty_manifests_are_reproducible_with_every_count_zero() -> None:
    comparison = compare_manifests(manifest(), manifest(), "A", "B")
    assert comparison.verdict == "REPRODUCIBLE"
    assert set(comparison.to_dict()["counts"].values()) == {0}


def test_files_are_matched_by_relative_path_not_by_name() -> None:
    a = manifest(file("amd64/pkg.deb", "a", 1), file("arm64/pkg.deb", "b", 1))
    b = manifest(file("amd64/pkg.deb", "a", 1), file("arm64/pkg.deb", "c", 1))
    comparison = compare_manifests(a, b, "A", "B")
    assert [(c.path, c.status) for c in comparison.common] == [
        ("amd64/pkg.deb", "IDENTICAL"),
        ("arm64/pkg.deb", "DIFFERENT"),
    ]


def test_a_shrinking_file_shows_a_negative_size_difference() -> None:
    comparison = compare_manifests(
        manifest(file("x", "a", 3000)), manifest(file("x", "b", 1000)), "A", "B"
    )
    [item] = comparison.different
    assert item.size_difference == -2000
    assert "Size difference: -2.0 KiB" in render_text(comparison)


def test_symlinks_are_compared_by_target() -> None:
    def link(target: str) -> ArtifactFile:
        return ArtifactFile(path="l", size=len(target), kind="symlink", link_target=target)

    same = compare_manifests(manifest(link("x")), manifest(link("x")), "A", "B")
    moved = compare_manifests(manifest(link("x")), manifest(link("y")), "A", "B")
    assert (same.verdict, moved.verdict) == ("REPRODUCIBLE", "NOT REPRODUCIBLE")


def test_a_different_branch_or_commit_is_a_warning_not_a_verdict() -> None:
    comparison = compare_manifests(
        manifest(branch="main", commit="abc"), manifest(branch="dev", commit="def"), "A", "B"
    )
    assert comparison.warnings == [
        "Different branches (main vs dev)",
        "Different commits (abc vs def): the comparison may not be meaningful",
    ]
    assert comparison.reproducible


def test_two_sides_with_the_same_label_are_told_apart() -> None:
    comparison = compare_manifests(manifest(), manifest(), "build1", "build1")
    assert (comparison.a.label, comparison.b.label) == ("build1 (A)", "build1 (B)")


def test_the_markdown_report_has_title_time_details_and_verdict() -> None:
    comparison = compare_manifests(
        manifest(file("x", "a", 1), file("gone", "a", 1)), manifest(file("x", "b", 2)), "A", "B"
    )
    report = render_markdown(comparison, MOMENT, {"x": "--- a/x\n+++ b/x\n```odd```\n"})
    assert report.startswith("# Build Comparison Report\n\n**Generated**: 2025-11-03T12:00:00Z\n")
    for heading in ("## Details", "## Summary", "## Only in A", "## Files in both", "## Verdict"):
        assert heading in report
    assert "````text\n--- a/x" in report  # a fence longer than any backtick run inside
    assert report.rstrip().endswith("NOT REPRODUCIBLE: differences found between the builds")


def test_to_dict_is_plain_json() -> None:
    a, b = manifest(file("x", "a", 1)), manifest(file("x", "b", 1))
    comparison = compare_manifests(a, b, "A", "B")
    assert json.loads(json.dumps(comparison.to_dict()))["verdict"] == "NOT REPRODUCIBLE"


def test_signed_bytes_keeps_the_sign() -> None:
    assert [signed_bytes(v) for v in (0, 12, -12, 1536, -3 * 2**20)] == [
        "0 B",
        "+12 B",
        "-12 B",
        "+1.5 KiB",
        "-3.0 MiB",
    ]


def test_deep_diff_returns_diffoscopes_text_for_each_differing_file(tmp_path: Path) -> None:
    write_tree(tmp_path / "a", {"greet-1.0.tar.gz": tarball(1_700_000_000)})
    write_tree(tmp_path / "b", {"greet-1.0.tar.gz": tarball(1_700_000_001)})
    texts = deep_diff(tmp_path / "a", tmp_path / "b", ["greet-1.0.tar.gz"], timeout=120)
    assert "greet/bin/greet" in texts["greet-1.0.tar.gz"]


def test_deep_diff_says_when_diffoscope_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("buildcoord.artifacts.comparison.diffoscope_command", lambda: None)
    texts = deep_diff(tmp_path, tmp_path, ["x"])
    assert texts == {"x": "diffoscope is not installed (pip install diffoscope)"}


def test_deep_diff_stops_diffoscope_at_the_timeout(tmp_path: Path) -> None:
    write_tree(tmp_path / "a", {"x": b"1"})
    write_tree(tmp_path / "b", {"x": b"2"})
    texts = deep_diff(tmp_path / "a", tmp_path / "b", ["x"], timeout=0.001)
    assert texts["x"] == "diffoscope took longer than 0.001 s; stopped"
