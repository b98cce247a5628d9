"""buildcoord artifacts manifest|verify|export on real files, sha256sum and git."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from inprocess import invoke_cli

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "build"
    (root / "debs").mkdir(parents=True)
    (root / "debs" / "greet_1.0_all.deb").write_bytes(b"deb\n")
    (root / "name with spaces.tar.gz").write_bytes(b"tgz\n")
    (root / "back\\slash").write_bytes(b"odd\n")
    (root / "new\nline").write_bytes(b"odder\n")
    (root / "notes.txt").write_bytes(b"not a package\n")
    return root


def make_manifest(root: Path, *args: str) -> Path:
    path = root / "manifest.json"
    outcome = invoke_cli(["artifacts", "manifest", str(root), "-o", str(path), *args])
    assert outcome.exit_code == 0, outcome.stderr
    return path


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_manifest_prints_json_on_stdout_without_o(tree: Path) -> None:
    outcome = invoke_cli(["artifacts", "manifest", str(tree), "--job", "7", "--branch", "main"])
    data = outcome.json()
    assert (data["job"], data["branch"], data["artifact_count"]) == (7, "main", 5)


def test_manifest_with_the_packages_preset_lists_only_packages(tree: Path) -> None:
    data = invoke_cli(["artifacts", "manifest", str(tree), "--preset", "packages"]).json()
    assert [f["path"] for f in data["files"]] == [
        "debs/greet_1.0_all.deb",
        "name with spaces.tar.gz",
    ]


def test_manifest_written_into_its_own_tree_does_not_list_itself(tree: Path) -> None:
    make_manifest(tree)
    path = make_manifest(tree)
    data = json.loads(path.read_text())
    assert "manifest.json" not in [f["path"] for f in data["files"]]


def test_manifest_of_a_missing_directory_fails_and_writes_nothing(tmp_path: Path) -> None:
    outcome = invoke_cli(
        ["artifacts", "manifest", str(tmp_path / "nope"), "-o", str(tmp_path / "m.json")]
    )
    assert "does not exist" in outcome.error
    assert files_in(tmp_path) == []


def test_verify_reports_every_status_and_exits_1(tree: Path) -> None:
    path = make_manifest(tree)
    (tree / "notes.txt").unlink()
    (tree / "debs" / "greet_1.0_all.deb").write_bytes(b"DEB\n")
    (tree / "extra.rpm").write_bytes(b"rpm\n")
    outcome = invoke_cli(["artifacts", "verify", str(path)])
    assert outcome.exit_code == 1
    lines = outcome.stdout.splitlines()
    assert "[X] MISSING: notes.txt" in lines
    assert "[X] MISMATCH: debs/greet_1.0_all.deb (md5, sha256, sha512 differ)" in lines
    assert "[X] EXTRA: extra.rpm (not in the manifest)" in lines
    assert "[OK] OK: name with spaces.tar.gz" in lines
    assert lines[-1] == "3 of 5 verified, 3 failed"


def test_verify_of_an_intact_tree_exits_0(tree: Path) -> None:
    path = make_manifest(tree)
    outcome = invoke_cli(["artifacts", "verify", str(path)])
    assert outcome.last_line == "5 of 5 verified, 0 failed"


def test_verify_with_root_checks_a_copy_elsewhere(tree: Path, tmp_path: Path) -> None:
    path = make_manifest(tree)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(tree), str(copy)], check=True)
    (copy / "manifest.json").unlink()
    assert invoke_cli(["artifacts", "verify", str(path), "--root", str(copy)]).exit_code == 0


def test_an_empty_manifest_verifies_as_0_of_0(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    path = make_manifest(tmp_path / "empty")
    assert invoke_cli(["artifacts", "verify", str(path)]).last_line == "0 of 0 verified, 0 failed"


def test_a_symlink_is_verified_as_a_link(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").write_bytes(b"outside\n")
    (tree / "latest").symlink_to(tmp_path / "outside")
    path = make_manifest(tree)
    assert "[OK] OK: latest" in invoke_cli(["artifacts", "verify", str(path)]).stdout
    (tree / "latest").unlink()
    (tree / "latest").write_bytes(b"outside\n")
    outcome = invoke_cli(["artifacts", "verify", str(path)])
    assert "[X] MISMATCH: latest (expected a symlink)" in outcome.stdout.splitlines()


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("{not json", "is not JSON"),
        ('{"hello": 1}', "is not a buildcoord manifest"),
    ],
)
def test_verify_of_a_bad_manifest_is_one_clear_error(
    tmp_path: Path, content: str, complaint: str
) -> None:
    path = tmp_path / "m.json"
    path.write_text(content)
    assert complaint in invoke_cli(["artifacts", "verify", str(path)]).error


def test_sha256sum_accepts_the_export_including_odd_names(tree: Path, tmp_path: Path) -> None:
    (tree / "latest").symlink_to("notes.txt")
    path = make_manifest(tree)
    sums = tmp_path / "SHA256SUMS"
    outcome = invoke_cli(["artifacts", "export", str(path), "--sha256sums", str(sums)])
    assert outcome.exit_code == 0, outcome.stderr
    assert "1 symlinks left out" in outcome.stderr
    result = subprocess.run(
        ["sha256sum", "--strict", "-c", str(sums)],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "name with spaces.tar.gz: OK" in result.stdout
    assert result.stdout.count(": OK") == 5


def test_sha256sum_catches_a_changed_file_after_export(tree: Path, tmp_path: Path) -> None:
    path = make_manifest(tree)
    sums = tmp_path / "SHA256SUMS"
    invoke_cli(["artifacts", "export", str(path), "--sha256sums", str(sums)])
    (tree / "notes.txt").write_bytes(b"changed\n")
    result = subprocess.run(["sha256sum", "-c", str(sums)], cwd=tree, capture_output=True)
    assert result.returncode == 1


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "coordination"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README").write_text("coordination\n")
    git(path, "add", "README")
    git(path, "commit", "-q", "-m", "start")
    return path


def test_export_to_git_commits_the_manifest_under_server_artifacts(tree: Path, repo: Path) -> None:
    path = make_manifest(tree, "--job", "12", "--server", "build1")
    (repo / "unrelated").write_text("staged but not ours\n")
    git(repo, "add", "unrelated")
    outcome = invoke_cli(["artifacts", "export", str(path), "--git", str(repo)])
    assert "committed build1/artifacts/12_manifest.json" in outcome.last_line
    assert git(repo, "log", "-1", "--format=%s") == "Export artifact manifest for job 12 [build1]\n"
    assert git(repo, "show", "HEAD:build1/artifacts/12_manifest.json") == path.read_text()
    assert git(repo, "show", "--name-only", "--format=", "HEAD") == (
        "build1/artifacts/12_manifest.json\n"
    )  # only the manifest: what the user had staged stays staged
    assert git(repo, "status", "--porcelain") == "A  unrelated\n"


def test_export_to_git_twice_changes_nothing_the_second_time(tree: Path, repo: Path) -> None:
    path = make_manifest(tree, "--job", "12", "--server", "build1")
    invoke_cli(["artifacts", "export", str(path), "--git", str(repo)])
    head = git(repo, "rev-parse", "HEAD")
    outcome = invoke_cli(["artifacts", "export", str(path), "--git", str(repo)])
    assert outcome.last_line.startswith("unchanged")
    assert git(repo, "rev-parse", "HEAD") == head


def test_export_to_git_takes_the_server_from_the_option(tree: Path, repo: Path) -> None:
    path = make_manifest(tree, "--job", "3")
    invoke_cli(["artifacts", "export", str(path), "--git", str(repo), "--server", "build2"])
    assert (repo / "build2" / "artifacts" / "3_manifest.json").is_file()


def test_export_to_git_refuses_a_server_name_with_a_trailing_newline(
    tree: Path, repo: Path
) -> None:
    path = make_manifest(tree, "--job", "3")
    outcome = invoke_cli(["artifacts", "export", str(path), "--git", str(repo), "--server", "b\n"])
    assert "cannot be a directory name" in outcome.error
    assert files_in(repo) == [".git", "README"]


def test_export_to_a_directory_that_is_not_git_fails_and_writes_nothing(
    tree: Path, tmp_path: Path
) -> None:
    path = make_manifest(tree, "--job", "12", "--server", "build1")
    plain = tmp_path / "plain"
    plain.mkdir()
    outcome = invoke_cli(["artifacts", "export", str(path), "--git", str(plain)])
    assert "is not a git repository" in outcome.error
    assert list(plain.iterdir()) == []


def test_export_without_a_job_fails_and_writes_nothing(tree: Path, repo: Path) -> None:
    path = make_manifest(tree, "--server", "build1")
    outcome = invoke_cli(["artifacts", "export", str(path), "--git", str(repo)])
    assert "names no job" in outcome.error
    assert files_in(repo) == [".git", "README"]


def test_a_failed_commit_leaves_the_repository_as_it_was(
    tree: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_manifest(tree, "--job", "12", "--server", "build1")
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho refused by hook >&2\nexit 1\n")
    hook.chmod(0o755)
    outcome = invoke_cli(["artifacts", "export", str(path), "--git", str(repo)])
    assert "git commit failed" in outcome.error
    assert git(repo, "status", "--porcelain") == ""
    assert not (repo / "build1" / "artifacts" / "12_manifest.json").exists()


def test_a_manifest_with_a_dot_dot_entry_is_refused_before_anything_is_written(
    tree: Path, tmp_path: Path
) -> None:
    path = make_manifest(tree)
    data = json.loads(path.read_text())
    data["files"][0]["path"] = "../../etc/passwd"
    path.write_text(json.dumps(data))
    sums = tmp_path / "SHA256SUMS"
    outcome = invoke_cli(["artifacts", "export", str(path), "--sha256sums", str(sums)])
    assert "contains '..'" in outcome.error
    assert not sums.exists()
    assert not any(name.startswith(".SHA256SUMS") for name in os.listdir(tmp_path))


def test_manifest_draws_no_progress_bar_when_stderr_is_not_a_terminal(tree: Path) -> None:
    path = tree / "manifest.json"
    outcome = invoke_cli(["artifacts", "manifest", str(tree), "-o", str(path)])
    size = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file() and p != path)
    assert outcome.stderr == f"5 files, {size} bytes: {path}\n"
