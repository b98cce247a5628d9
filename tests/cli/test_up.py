"""The pieces of buildcoord up that talk to the coordinator, over the real app in process."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from buildcoord.client import Client
from buildcoord.errors import Unauthorized
from buildcoord.models import ArtifactFile, server_label
from buildcoord.up.demo.repository import BUILD_COMMAND, FEATURE, MAIN, ensure_demo_repository
from buildcoord.up.demo_builds import DemoBuilds, ensure_branch, queue_demo_builds, verdict
from buildcoord.up.run import ensure_server
from buildcoord.up.status import FleetReader, PlainReport, ProcessView
from inprocess import Connect

TARBALL = ArtifactFile(path="greet-1.0.0.tar.gz", size=745, sha256="a" * 64)


def test_ensure_server_registers_a_missing_server_and_keeps_its_token_private(
    operator: Client, connect: Connect, tmp_path: Path
) -> None:
    token = ensure_server(operator, connect, tmp_path, "build1")
    path = tmp_path / "agents" / "build1.token"
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert operator.get_server("build1").labels == ()
    assert connect(token).get_server("build1").name == "build1"


def test_ensure_server_reuses_the_saved_token_on_the_next_start(
    operator: Client, connect: Connect, tmp_path: Path
) -> None:
    first = ensure_server(operator, connect, tmp_path, "build1")
    registered = operator.get_server("build1").registered_at
    assert ensure_server(operator, connect, tmp_path, "build1") == first
    assert operator.get_server("build1").registered_at == registered


def test_ensure_server_registers_again_when_the_token_file_is_gone(
    operator: Client, connect: Connect, tmp_path: Path
) -> None:
    old = ensure_server(operator, connect, tmp_path, "build1")
    (tmp_path / "agents" / "build1.token").unlink()
    new = ensure_server(operator, connect, tmp_path, "build1")
    assert new != old
    with pytest.raises(Unauthorized):
        connect(old).get_server("build1")


def test_ensure_server_registers_again_when_the_saved_token_no_longer_works(
    operator: Client, connect: Connect, tmp_path: Path
) -> None:
    ensure_server(operator, connect, tmp_path, "build1")
    (tmp_path / "agents" / "build1.token").write_text("not-a-token\n")
    new = ensure_server(operator, connect, tmp_path, "build1")
    assert connect(new).get_server("build1").name == "build1"


def test_ensure_branch_keeps_a_matching_branch_and_replaces_a_changed_one(
    operator: Client, tmp_path: Path
) -> None:
    ensure_branch(operator, "main", repo=str(tmp_path), command="./build.sh")
    created = operator.get_branch("main").created_at
    ensure_branch(operator, "main", repo=str(tmp_path), command="./build.sh")
    assert operator.get_branch("main").created_at == created
    ensure_branch(operator, "main", repo=str(tmp_path), command="make")
    assert operator.get_branch("main").command == "make"


@pytest.fixture
def demo(operator: Client, tmp_path: Path) -> DemoBuilds:
    """The demo builds queued for build1 and build2, each pinned by its server= label."""
    for name in ("build1", "build2"):
        operator.register_server(name)
    repository = ensure_demo_repository(tmp_path / "repo")
    pinned = {name: server_label(name) for name in ("build1", "build2")}
    return queue_demo_builds(operator, repository, pinned)


def test_the_demo_queues_one_commit_of_main_for_each_server_and_the_feature_branch(
    operator: Client, demo: DemoBuilds
) -> None:
    assert {b.name: b.command for b in operator.list_branches()} == {
        MAIN: BUILD_COMMAND,
        FEATURE: BUILD_COMMAND,
    }
    jobs = {server: operator.get_job(job_id) for server, job_id in demo.main_jobs.items()}
    assert {job.commit for job in jobs.values()} == {demo.commit}
    assert {server: job.labels for server, job in jobs.items()} == {
        "build1": ("server=build1",),
        "build2": ("server=build2",),
    }
    assert operator.get_job(demo.feature_job).branch == FEATURE


def test_each_server_can_claim_only_its_own_build_of_main(
    operator: Client, demo: DemoBuilds
) -> None:
    claimed = operator.claim_job("build2")
    assert claimed is not None
    assert claimed.id == demo.main_jobs["build2"]


def finish(operator: Client, server: str, status: str, manifest: list[ArtifactFile]) -> None:
    """Claim the next job for server and complete it with manifest."""
    job = operator.claim_job(server)
    assert job is not None
    operator.complete_job(
        job.id,
        status=status,
        exit_code=0 if status == "succeeded" else 2,
        server=server,
        fencing_token=job.fencing_token,
        manifest=manifest,
    )


def test_the_verdict_waits_until_both_builds_of_main_have_finished(
    operator: Client, demo: DemoBuilds
) -> None:
    assert verdict(operator, demo) is None
    finish(operator, "build1", "succeeded", [TARBALL])
    assert verdict(operator, demo) is None


def test_the_verdict_shows_identical_sha256_when_both_servers_made_the_same_bytes(
    operator: Client, demo: DemoBuilds
) -> None:
    finish(operator, "build1", "succeeded", [TARBALL])
    finish(operator, "build2", "succeeded", [TARBALL])
    assert verdict(operator, demo) == [
        f"main @ {demo.commit[:12]}: build1 and build2 produced identical artifacts "
        f"(sha256 {'a' * 64}  greet-1.0.0.tar.gz)"
    ]


def test_the_verdict_ends_with_the_predicted_duration_of_the_next_build_of_main(
    operator: Client, demo: DemoBuilds
) -> None:
    for server, seconds in (("build1", 4.0), ("build2", 5.0)):
        job = operator.claim_job(server)
        assert job is not None
        operator.complete_job(
            job.id,
            status="succeeded",
            exit_code=0,
            duration=seconds,
            server=server,
            fencing_token=job.fencing_token,
            manifest=[TARBALL],
        )
    lines = verdict(operator, demo) or []
    assert lines[-1].startswith("main: the next build should take 4.")
    assert "from 2 builds; 'buildcoord predict duration main')" in lines[-1]


def test_the_verdict_names_a_failed_build_and_how_to_read_its_log(
    operator: Client, demo: DemoBuilds
) -> None:
    finish(operator, "build1", "succeeded", [TARBALL])
    finish(operator, "build2", "failed", [])
    [line] = verdict(operator, demo) or []
    assert "the build on build2 failed (exit 2)" in line
    assert f"buildcoord log show {demo.main_jobs['build2']}" in line


def test_the_plain_report_prints_each_change_once(
    operator: Client, demo: DemoBuilds, capsys: pytest.CaptureFixture[str]
) -> None:
    reader, report = FleetReader(operator), PlainReport()
    processes = [ProcessView("build1", 123)]
    report.show(reader.read(processes))
    finish(operator, "build1", "succeeded", [TARBALL])
    report.show(reader.read(processes))
    report.show(reader.read(processes))
    lines = [line.split(" ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    first = demo.main_jobs["build1"]
    title = f"#{first} main @ {demo.commit[:12]}"
    assert f"job {title} queued (labels server=build1)" in lines
    assert lines.count(f"job {title} queued (labels server=build1)") == 1
    [done] = [line for line in lines if line.startswith(f"job {title} succeeded")]
    assert "on build1" in done
    assert f"  #{first} artifact greet-1.0.0.tar.gz  745 B  sha256 {'a' * 64}" in lines
