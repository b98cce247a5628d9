"""Comparing two servers' builds of one commit."""

from __future__ import annotations

from buildcoord.models import ArtifactFile
from buildcoord.up.demo.comparison import compare_builds

TAR = ArtifactFile(path="greet.tar.gz", size=10, sha256="a" * 64)
DEB = ArtifactFile(path="greet.deb", size=20, sha256="b" * 64)


def test_identical_artifacts_get_one_line_each_with_their_sha256() -> None:
    lines = compare_builds("main @ 0123", ("build1", [TAR, DEB]), ("build2", [DEB, TAR]))
    assert lines == [
        f"main @ 0123: build1 and build2 produced identical artifacts (sha256 {'b' * 64}  "
        "greet.deb)",
        f"main @ 0123: build1 and build2 produced identical artifacts (sha256 {'a' * 64}  "
        "greet.tar.gz)",
    ]


def test_a_differing_artifact_is_reported_not_identical_with_both_checksums() -> None:
    other = ArtifactFile(path="greet.tar.gz", size=10, sha256="c" * 64)
    [line] = compare_builds("main @ 0123", ("build1", [TAR]), ("build2", [other]))
    assert "NOT identical" in line
    assert f"build1 sha256 {'a' * 64}, build2 sha256 {'c' * 64}" in line


def test_an_artifact_only_one_server_made_is_reported_not_identical() -> None:
    lines = compare_builds("main @ 0123", ("build1", [TAR, DEB]), ("build2", [TAR]))
    assert lines[0].endswith("NOT identical artifacts: greet.deb only on build1")
    assert "identical artifacts (sha256" in lines[1]


def test_two_empty_manifests_say_there_was_nothing_to_compare() -> None:
    assert compare_builds("main @ 0123", ("build1", []), ("build2", [])) == [
        "main @ 0123: build1 and build2 produced no artifacts to compare"
    ]
