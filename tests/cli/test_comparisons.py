"""buildcoord compare A B | files | jobs: exit 0/1/2, reports always written, real coordinator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildcoord.client import Client
from buildcoord.models import ArtifactFile
from inprocess import RegisterAgent, RunCli, invoke_cli

TARBALL = ArtifactFile(
    path="greet-1.0.0.tar.gz", size=6, md5="a" * 32, sha256="b" * 64, sha512="c" * 128
)


def build(root: Path, files: dict[str, bytes], *args: str) -> Path:
    """Write files under root and its manifest beside it; return the manifest path."""
    root.mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)
    path = root / "manifest.json"
    outcome = invoke_cli(["artifacts", "manifest", str(root), "-o", str(path), *args])
    assert outcome.exit_code == 0, outcome.stderr
    return path


def test_identical_builds_are_reproducible_and_exit_0(tmp_path: Path) -> None:
    a = build(tmp_path / "a", {"app.deb": b"same"}, "--server", "build1", "--job", "1")
    b = build(tmp_path / "b", {"app.deb": b"same"}, "--server", "build2", "--job", "2")
    outcome = invoke_cli(["compare", str(a), str(b)])
    assert outcome.exit_code == 0
    assert outcome.stdout.splitlines()[-1].startswith("[OK] REPRODUCIBLE")
    assert "build1 (job 1)" in outcome.stdout


def test_differing_builds_exit_1_and_the_report_is_written_anyway(tmp_path: Path) -> None:
    a = build(tmp_path / "a", {"app.deb": b"one", "only-a": b"x"})
    b = build(tmp_path / "b", {"app.deb": b"two!"})
    report = tmp_path / "report.md"
    outcome = invoke_cli(["compare", str(a), str(b), "--report", str(report)])
    assert outcome.exit_code == 1
    assert "[X] app.deb - DIFFERENT" in outcome.stdout
    text = report.read_text()
    assert text.startswith("# Build Comparison Report\n\n**Generated**: ")
    assert "**Verdict**: NOT REPRODUCIBLE" in text
    assert "- `only-a`" in text


def test_compare_files_is_the_same_as_compare(tmp_path: Path) -> None:
    a = build(tmp_path / "a", {"app.deb": b"same"})
    b = build(tmp_path / "b", {"app.deb": b"same"})
    direct = invoke_cli(["compare", str(a), str(b), "--json"]).json()
    named = invoke_cli(["compare", "files", str(a), str(b), "--json"]).json()
    assert direct == named
    assert direct["verdict"] == "REPRODUCIBLE"


def test_a_missing_manifest_is_an_error_exiting_2_and_no_report(tmp_path: Path) -> None:
    a = build(tmp_path / "a", {"app.deb": b"same"})
    report = tmp_path / "report.md"
    outcome = invoke_cli(["compare", str(a), str(tmp_path / "nope.json"), "--report", str(report)])
    assert outcome.exit_code == 2
    assert "nope.json does not exist" in outcome.error
    assert not report.exists()


def test_a_manifest_of_the_wrong_schema_exits_2(tmp_path: Path) -> None:
    a = build(tmp_path / "a", {"app.deb": b"same"})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([1, 2, 3]))
    outcome = invoke_cli(["compare", str(a), str(bad)])
    assert outcome.exit_code == 2
    assert "not a buildcoord manifest" in outcome.error


def test_deep_attaches_diffoscopes_text_to_the_report(tmp_path: Path) -> None:
    a = build(tmp_path / "a", {"notes.txt": b"hello\nworld\n"})
    b = build(tmp_path / "b", {"notes.txt": b"hello\nthere\n"})
    report = tmp_path / "report.md"
    outcome = invoke_cli(["compare", "files", str(a), str(b), "--deep", "--report", str(report)])
    assert outcome.exit_code == 1
    assert "+there" in outcome.stdout
    assert "diffoscope:" in report.read_text()
    assert "-world" in report.read_text()


def finish(agent_client: Client, server: str, manifest: list[ArtifactFile]) -> int:
    """Claim the next job as server's agent and complete it with manifest, as an agent does."""
    job = agent_client.claim_job(server)
    assert job is not None
    agent_client.complete_job(
        job.id,
        status="succeeded",
        exit_code=0,
        server=server,
        fencing_token=job.fencing_token,
        manifest=manifest,
    )
    return job.id


@pytest.fixture
def two_builds(operator: Client, register_agent: RegisterAgent) -> tuple[int, int]:
    """Two servers build main at one commit, with the same tarball and a link."""
    link = ArtifactFile(path="latest", size=18, kind="symlink", link_target="greet-1.0.0.tar.gz")
    ids = []
    for server in ("build1", "build2"):
        agent = register_agent(server)
        operator.submit_job("main", "abc1234")
        ids.append(finish(agent.client, server, [TARBALL, link]))
    return ids[0], ids[1]


def test_compare_jobs_reads_both_manifests_from_the_coordinator(
    run_cli: RunCli, two_builds: tuple[int, int], tmp_path: Path
) -> None:
    first, second = two_builds
    report = tmp_path / "jobs.md"
    outcome = run_cli("compare", "jobs", str(first), str(second), "--report", str(report))
    assert outcome.exit_code == 0, outcome.stderr
    assert f"build1 (job {first})" in outcome.stdout
    assert "[OK] REPRODUCIBLE" in outcome.stdout
    assert "| main | abc1234 |" in report.read_text()


def test_compare_jobs_json_gives_the_verdict_and_counts(
    run_cli: RunCli, two_builds: tuple[int, int]
) -> None:
    data = run_cli("compare", "jobs", *map(str, two_builds), "--json").json()
    assert data["verdict"] == "REPRODUCIBLE"
    assert data["counts"]["identical"] == 2
    assert (data["a"]["server"], data["b"]["server"]) == ("build1", "build2")


def test_compare_jobs_with_an_unknown_job_exits_2(
    run_cli: RunCli, two_builds: tuple[int, int]
) -> None:
    outcome = run_cli("compare", "jobs", str(two_builds[0]), "999")
    assert outcome.exit_code == 2
    assert outcome.error.startswith("error: ")
