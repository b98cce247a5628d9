"""The agent builds a job end to end: checkout, build, log, manifest, report."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from buildcoord.client import Client

from .conftest import COMMIT_TIME, MakeAgent, SourceRepo, output_of

pytestmark = pytest.mark.timeout(60)

FACTS = (
    'printf "%s\\n" "$BUILDCOORD_JOB_ID" "$BUILDCOORD_BRANCH" "$BUILDCOORD_COMMIT" '
    '"$SOURCE_DATE_EPOCH" "$BUILDCOORD_SERVER" "$BUILDCOORD_FENCING_TOKEN" "$BUILDCOORD_URL" '
    '"$BUILDCOORD_TOKEN" "$PWD" > "$BUILDCOORD_ARTIFACTS_DIR/facts.txt"'
)


def test_a_build_that_exits_0_is_reported_succeeded(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command="true")
    agent = make_agent()
    job = operator.submit_job("main")

    assert agent.step() is True

    done = operator.get_job(job.id)
    assert done.status == "succeeded"
    assert done.exit_code == 0
    assert done.server == "build1"
    assert done.duration is not None
    assert done.duration > 0


def test_the_build_output_is_in_the_job_log_line_by_line(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command="echo one; echo two >&2; echo three")
    job = operator.submit_job("main")

    make_agent().step()

    assert output_of(operator, job.id) == ["one", "two", "three"]


def test_the_log_tells_what_the_agent_did_and_ends_with_success(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command="true")
    job = operator.submit_job("main")

    make_agent().step()

    events = [e for e in operator.log_entries(job.id) if e.kind == "event"]
    assert "build1 took job" in events[0].message
    assert events[-1].level == "success"


def test_the_manifest_of_the_artifacts_directory_is_stored_with_the_job(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    command = 'cd "$BUILDCOORD_ARTIFACTS_DIR" && mkdir dist && cat "$OLDPWD/README" > dist/app.txt'
    operator.add_branch("main", repo=source.url, command=command)
    job = operator.submit_job("main")

    make_agent().step()

    manifest = operator.manifest(job.id)
    assert [item.path for item in manifest] == ["dist/app.txt"]
    assert manifest[0].size == len(b"hello\n")
    assert manifest[0].sha256 == hashlib.sha256(b"hello\n").hexdigest()
    assert manifest[0].md5 == hashlib.md5(b"hello\n").hexdigest()


def test_the_build_gets_the_jobs_facts_in_its_environment(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, tmp_path: Path
) -> None:
    operator.add_branch("feature/x", repo=source.url, command=FACTS)
    commit = source.commit({"x.txt": "x\n"}, branch="feature/x")
    job = operator.submit_job("feature/x")
    agent = make_agent()

    agent.step()

    artifacts = tmp_path / "build1" / "artifacts" / "feature_x" / str(job.id)
    facts = (artifacts / "facts.txt").read_text().splitlines()
    assert facts[:6] == [
        str(job.id),
        "feature/x",
        commit,
        str(COMMIT_TIME),
        "build1",
        str(operator.get_job(job.id).fencing_token),
    ]
    assert facts[6] == agent.url
    assert facts[7].startswith(f"bcb_{job.id}_")
    assert facts[8] == str(tmp_path / "build1" / "worktrees" / "feature_x")


def test_source_date_epoch_is_the_commit_time(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, tmp_path: Path
) -> None:
    operator.add_branch("main", repo=source.url, command="echo $SOURCE_DATE_EPOCH")
    source.commit({"later.txt": "later\n"}, when=COMMIT_TIME + 12345)
    job = operator.submit_job("main")

    make_agent().step()

    assert output_of(operator, job.id) == [str(COMMIT_TIME + 12345)]


def test_a_second_build_of_a_branch_reuses_its_worktree_at_the_new_commit(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    # cache/ is git-ignored: a reused worktree keeps it, a fresh one would not have it.
    command = "pwd; cat version.txt; ls cache 2>/dev/null; mkdir -p cache; touch cache/warm"
    operator.add_branch("main", repo=source.url, command=command)
    source.commit({"version.txt": "1\n"})
    first = operator.submit_job("main")
    agent = make_agent()
    agent.step()
    source.commit({"version.txt": "2\n"})
    second = operator.submit_job("main")

    agent.step()

    before, after = output_of(operator, first.id), output_of(operator, second.id)
    assert before[:2] == [before[0], "1"]
    assert after == [before[0], "2", "warm"]
    assert operator.get_job(second.id).status == "succeeded"


def test_a_build_that_exits_3_fails_with_exit_code_3(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command="echo broken; exit 3")
    job = operator.submit_job("main")

    make_agent().step()

    done = operator.get_job(job.id)
    assert done.status == "failed"
    assert done.exit_code == 3
    assert done.reason == "build failed with exit code 3"


def test_a_build_command_that_does_not_exist_fails_with_exit_127_and_says_so(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command="nosuchcommand-xyz --build")
    job = operator.submit_job("main")

    make_agent().step()

    done = operator.get_job(job.id)
    assert done.status == "failed"
    assert done.exit_code == 127
    assert done.reason is not None
    assert "not found (exit 127)" in done.reason
    assert "nosuchcommand-xyz" in done.reason
    errors = [e.message for e in operator.log_entries(job.id) if e.level == "error"]
    assert errors == [done.reason]


def test_step_returns_false_when_there_is_nothing_to_build(make_agent: MakeAgent) -> None:
    assert make_agent().step() is False


def test_a_job_of_a_branch_without_a_build_command_is_never_claimed(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command=None)
    job = operator.submit_job("main")

    assert make_agent().step() is False
    assert operator.get_job(job.id).status == "queued"


def test_an_agent_without_a_jobs_label_never_claims_it(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command="true", labels=["gpu"])
    job = operator.submit_job("main")
    plain = make_agent("build1")
    capable = make_agent("build2", ["gpu"])

    assert plain.step() is False
    assert operator.get_job(job.id).status == "queued"
    assert capable.step() is True
    assert operator.get_job(job.id).server == "build2"
