"""Manifests: one read pass, every digest right, deterministic JSON, strict loading, verify."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from buildcoord.artifacts import hashing
from buildcoord.artifacts.hashing import Progress
from buildcoord.artifacts.manifest import (
    Manifest,
    build_manifest,
    create_manifest,
    load_manifest,
    parse_manifest,
    select_patterns,
    verify_manifest,
)
from buildcoord.errors import InvalidInput

MOMENT = datetime(2025, 11, 3, 12, 0, 0, tzinfo=UTC)


def digests(data: bytes) -> tuple[str, str, str]:
    return (
        hashlib.md5(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
        hashlib.sha512(data).hexdigest(),
    )


def make_tree(root: Path) -> dict[str, bytes]:
    """A tree with an empty file, small files, files around the chunk and split sizes."""
    chunk = hashing.CHUNK_BYTES
    contents = {
        "empty": b"",
        "a.deb": b"deb contents\n",
        "sub/deeper/b.rpm": os.urandom(3000),
        "sub/name with spaces.tar.gz": os.urandom(70_000),
        "exactly-two-chunks.bin": os.urandom(2 * chunk),
        "split-exact.war": os.urandom(hashing.SPLIT_BYTES),
        "split-odd.bin": os.urandom(hashing.SPLIT_BYTES + 3 * chunk + 17),
    }
    for relative, data in contents.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return contents


def test_every_file_gets_its_size_and_three_digests_whatever_its_size(tmp_path: Path) -> None:
    contents = make_tree(tmp_path)
    files = build_manifest(tmp_path)
    assert [item.path for item in files] == sorted(contents)
    for item in files:
        data = contents[item.path]
        assert (item.size, item.md5, item.sha256, item.sha512) == (len(data), *digests(data))


def test_one_worker_and_many_workers_give_the_same_manifest(tmp_path: Path) -> None:
    make_tree(tmp_path)
    assert build_manifest(tmp_path, workers=1) == build_manifest(tmp_path, workers=4)


def test_progress_reaches_every_file_and_byte(tmp_path: Path) -> None:
    contents = make_tree(tmp_path)
    seen: list[Progress] = []
    build_manifest(tmp_path, progress=seen.append)
    total = sum(len(data) for data in contents.values())
    assert seen[-1] == Progress(len(contents), len(contents), total, total)
    assert [p.bytes_done for p in seen] == sorted(p.bytes_done for p in seen)


def test_a_symlink_pointing_outside_the_root_is_recorded_as_a_link_and_not_followed(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not an artifact")
    root = tmp_path / "root"
    root.mkdir()
    (root / "leak").symlink_to(outside / "secret")
    (root / "leak-dir").symlink_to(outside, target_is_directory=True)
    files = build_manifest(root)
    assert [(f.path, f.kind, f.link_target, f.sha256) for f in files] == [
        ("leak", "symlink", str(outside / "secret"), None),
        ("leak-dir", "symlink", str(outside), None),
    ]


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        build_manifest(tmp_path / "nope")


def test_the_packages_preset_selects_the_seeds_four_kinds_at_any_depth(tmp_path: Path) -> None:
    make_tree(tmp_path)
    files = build_manifest(tmp_path, patterns=select_patterns([], "packages"))
    assert [f.path for f in files] == [
        "a.deb",
        "split-exact.war",
        "sub/deeper/b.rpm",
        "sub/name with spaces.tar.gz",
    ]


def test_a_pattern_with_a_slash_matches_the_relative_path(tmp_path: Path) -> None:
    make_tree(tmp_path)
    files = build_manifest(tmp_path, patterns=["sub/deeper/*"])
    assert [f.path for f in files] == ["sub/deeper/b.rpm"]


def test_an_unknown_preset_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown preset"):
        select_patterns([], "isos")


def test_the_json_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    make_tree(tmp_path)
    (tmp_path / "link").symlink_to("a.deb")
    first = create_manifest(tmp_path, job=7, branch="main", commit="abc", created_at=MOMENT)
    second = create_manifest(tmp_path, job=7, branch="main", commit="abc", created_at=MOMENT)
    assert first.to_json() == second.to_json()
    data = json.loads(first.to_json())
    assert (data["format"], data["version"]) == ("buildcoord-manifest", 1)
    assert data["artifact_count"] == 8
    assert data["total_size"] == sum(f.size for f in first.files if f.kind == "file")
    assert parse_manifest(first.to_json()) == first


def test_an_empty_tree_counts_zero_files_and_zero_bytes(tmp_path: Path) -> None:
    data = json.loads(create_manifest(tmp_path, created_at=MOMENT).to_json())
    assert (data["artifact_count"], data["total_size"], data["files"]) == (0, 0, [])


def valid_document() -> dict[str, object]:
    entry = {"path": "a.deb", "kind": "file", "size": 13}
    entry.update(zip(("md5", "sha256", "sha512"), digests(b"deb contents\n"), strict=True))
    return json.loads(Manifest(files=[], created_at=MOMENT).to_json()) | {
        "files": [entry],
        "artifact_count": 1,
        "total_size": 13,
    }


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"format": "other"}, "not a buildcoord manifest"),
        ({"version": 99}, "unsupported manifest version"),
        ({"surprise": 1}, "unknown field"),
        ({"files": {}}, "'files' must be a list"),
        ({"job": "seven"}, "'job' must be int"),
        ({"created_at": "yesterday"}, "not an ISO 8601 time"),
        ({"artifact_count": 5}, "artifact_count says 5"),
    ],
)
def test_a_document_of_the_wrong_schema_is_refused_saying_why(
    change: dict[str, object], complaint: str
) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        parse_manifest(json.dumps(valid_document() | change), "m.json")


@pytest.mark.parametrize(
    ("path", "complaint"),
    [
        ("../etc/passwd", "contains '..'"),
        ("sub/../../x", "contains '..'"),
        ("/etc/passwd", "is absolute"),
        ("sub//x", "not normalised"),
        ("./x", "not normalised"),
    ],
)
def test_an_entry_escaping_the_root_is_refused_naming_the_entry(path: str, complaint: str) -> None:
    document = valid_document()
    document["files"][0]["path"] = path  # type: ignore[index]
    with pytest.raises(InvalidInput, match=rf"m\.json: entry 1: .*{complaint}"):
        parse_manifest(json.dumps(document), "m.json")


def test_a_duplicate_path_is_refused() -> None:
    document = valid_document()
    document["files"] = [document["files"][0], document["files"][0]]  # type: ignore[index]
    document["artifact_count"], document["total_size"] = 2, 26
    with pytest.raises(InvalidInput, match=r"entry 2: duplicate path 'a\.deb'"):
        parse_manifest(json.dumps(document), "m.json")


def test_a_bad_digest_is_refused() -> None:
    document = valid_document()
    document["files"][0]["sha256"] = "XYZ"  # type: ignore[index]
    with pytest.raises(InvalidInput, match="'sha256' must be 64 lowercase hex digits"):
        parse_manifest(json.dumps(document), "m.json")


def test_a_file_that_is_not_json_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text("{not json")
    with pytest.raises(InvalidInput, match=r"m\.json is not JSON"):
        load_manifest(path)


def test_verify_reports_ok_missing_mismatch_and_extra(tmp_path: Path) -> None:
    make_tree(tmp_path)
    (tmp_path / "link").symlink_to("a.deb")
    document = create_manifest(tmp_path, created_at=MOMENT)
    (tmp_path / "empty").unlink()
    (tmp_path / "a.deb").write_bytes(b"tampered!!!!\n")  # same size, other bytes
    (tmp_path / "link").unlink()
    (tmp_path / "link").symlink_to("elsewhere")
    (tmp_path / "sub" / "new").write_bytes(b"new")
    checks = {check.path: check for check in verify_manifest(document, tmp_path)}
    assert checks["empty"].status == "MISSING"
    assert checks["a.deb"].status == "MISMATCH"
    assert checks["a.deb"].detail == "md5, sha256, sha512 differ"
    assert checks["link"].status == "MISMATCH"
    assert "elsewhere" in checks["link"].detail
    assert checks["sub/new"].status == "EXTRA"
    assert checks["split-odd.bin"].status == "OK"


def test_verify_names_a_size_change(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    document = create_manifest(tmp_path, created_at=MOMENT)
    (tmp_path / "f").write_bytes(b"abcd")
    [check] = verify_manifest(document, tmp_path)
    assert check.detail.startswith("size (4 bytes, expected 3)")
