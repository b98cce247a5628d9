"""A build runs code from the commit: it gets a token for its own job's log, never the agent's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildcoord.agent.agent import Agent
from buildcoord.agent.options import AgentOptions
from buildcoord.client import Client
from buildcoord.errors import Forbidden, NotFound
from buildcoord.models import Job, Metrics
from inprocess import Connect, RegisterAgent

from .conftest import Background, MakeAgent, SourceRepo, output_of, wait_for

pytestmark = pytest.mark.timeout(60)

# The build hands its environment's token to the test, then runs until the test says go.
HAND_OVER = (
    'printf "%s" "${BUILDCOORD_TOKEN-unset}" > "$BUILDCOORD_ARTIFACTS_DIR/token.tmp" && '
    'mv "$BUILDCOORD_ARTIFACTS_DIR/token.tmp" "$BUILDCOORD_ARTIFACTS_DIR/token" && '
    'while [ ! -e "$BUILDCOORD_ARTIFACTS_DIR/go" ]; do sleep 0.05; done'
)


@dataclass(frozen=True)
class Held:
    """A build held running: its job, the token it was given, its agent's own token."""

    job: Job
    token: str
    agent_token: str
    go: Path


Hold = Callable[[], Held]


@pytest.fixture
def hold_build(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, tmp_path: Path
) -> Iterator[Hold]:
    """Start build1 on a job whose build is held running; return the job, its token, go file."""
    running: list[tuple[Background, Path]] = []

    def hold() -> Held:
        operator.add_branch("main", repo=source.url, command=HAND_OVER)
        job = operator.submit_job("main")
        agent = make_agent()
        artifacts = tmp_path / "build1" / "artifacts" / "main" / str(job.id)
        running.append((Background(agent.step), artifacts / "go"))
        token_file = artifacts / "token"
        wait_for(token_file.exists, what="the build to hand over its token")
        agent_token = agent.client.http.headers["Authorization"].removeprefix("Bearer ")
        return Held(operator.get_job(job.id), token_file.read_text(), agent_token, artifacts / "go")

    yield hold
    for step, go in running:
        go.touch()
        step.result()


def test_the_build_does_not_get_the_agents_token(hold_build: Hold) -> None:
    held = hold_build()
    assert held.agent_token.startswith("bc_")
    assert held.agent_token not in held.token
    assert held.token.startswith(f"bcb_{held.job.id}_{held.job.fencing_token}_")


def test_the_builds_token_cannot_claim_a_job(
    hold_build: Hold, operator: Client, connect: Connect
) -> None:
    build = connect(hold_build().token)
    operator.submit_job("main", priority=1)
    with pytest.raises(Forbidden):
        build.claim_job("build1")
    with pytest.raises(Forbidden):
        build.claim_assignment("build1")


def test_the_builds_token_cannot_relabel_its_server(
    hold_build: Hold, operator: Client, connect: Connect
) -> None:
    build = connect(hold_build().token)
    with pytest.raises(Forbidden):
        build.heartbeat("build1", Metrics(), labels=["pinned-elsewhere"])
    assert operator.get_server("build1").labels == ()


def test_the_builds_token_cannot_read_jobs(hold_build: Hold, connect: Connect) -> None:
    held = hold_build()
    build = connect(held.token)
    with pytest.raises(Forbidden):
        build.get_job(held.job.id)
    with pytest.raises(Forbidden):
        build.list_jobs()


def test_the_builds_token_cannot_renew_its_lease(hold_build: Hold, connect: Connect) -> None:
    job = (held := hold_build()).job
    with pytest.raises(Forbidden):
        connect(held.token).renew_job(job.id, server="build1", fencing_token=job.fencing_token)


def test_the_builds_token_appends_to_its_jobs_log_while_it_runs(
    hold_build: Hold, operator: Client, connect: Connect
) -> None:
    held = hold_build()
    entry = {"kind": "event", "level": "info", "message": "tests passed"}
    assert connect(held.token).append_log(held.job.id, [entry]) == 1
    assert "tests passed" in [e.message for e in operator.log_entries(held.job.id)]


class OldCoordinator(Client):
    """A coordinator from before build tokens: it has no route to get one."""

    def build_token(self, job_id: int, *, server: str, fencing_token: int) -> str:
        """Answer as an old coordinator would: no such route."""
        raise NotFound("Not Found")


def test_without_a_build_token_the_build_runs_with_no_token_at_all(
    operator: Client,
    register_agent: RegisterAgent,
    source: SourceRepo,
    tmp_path: Path,
    connect: Connect,
) -> None:
    registered = register_agent("build1")
    client = OldCoordinator("http://testserver", registered.token, http=registered.client.http)
    agent = Agent(client, AgentOptions(name="build1", workdir=tmp_path / "build1"))
    operator.add_branch("main", repo=source.url, command='echo "token=${BUILDCOORD_TOKEN-unset}"')
    job = operator.submit_job("main")
    try:
        agent.step()
    finally:
        agent.close()
    assert output_of(operator, job.id) == ["token=unset"]
    assert operator.get_job(job.id).status == "succeeded"
