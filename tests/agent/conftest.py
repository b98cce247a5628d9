"""Agent tests: the real agent against the coordinator in process, real git, real processes.

The store runs on SQLite only here: the agent sees the coordinator through HTTP, and the
store's behaviour on both backends is the services tests' business. Builds run for real
(supervisor, bash), so the helpers below poll with a bound, never sleep blindly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from buildcoord.agent.agent import Agent
from buildcoord.agent.options import AgentOptions
from buildcoord.client import Client
from buildcoord.models import Job
from inprocess import (  # noqa: F401 - fixtures are found by name
    RegisterAgent,
    app,
    connect,
    coordinator,
    operator,
    register_agent,
    run_cli,
    settings,
)

MakeAgent = Callable[..., Agent]
COMMIT_TIME = 1_700_000_000


@pytest.fixture
def migrated_db_url(migrated_sqlite_file: Path, tmp_path: Path) -> str:
    """A migrated SQLite database (overrides the both-backends fixture for agent tests)."""
    target = tmp_path / "buildcoord.db"
    shutil.copyfile(migrated_sqlite_file, target)
    return f"sqlite:///{target}"


# --- git -------------------------------------------------------------------------------------


def git(*args: str, cwd: Path, when: int = COMMIT_TIME) -> str:
    """Run git in cwd with a fixed identity and commit time; return its stdout."""
    env = dict(os.environ)
    stamp = f"@{when} +0000"
    env.update(
        {
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
            "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_DATE": stamp,
        }
    )
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@dataclass
class SourceRepo:
    """A git repository made by the test, on branch main."""

    path: Path

    @property
    def url(self) -> str:
        """What a branch's --repo names."""
        return str(self.path)

    def commit(
        self, files: dict[str, str], *, branch: str = "main", when: int = COMMIT_TIME
    ) -> str:
        """Write files, commit them on branch, return the commit id."""
        git("checkout", "-q", "-B", branch, cwd=self.path)
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git("add", "-A", cwd=self.path)
        git("commit", "-q", "-m", f"change at {when}", cwd=self.path, when=when)
        return git("rev-parse", "HEAD", cwd=self.path)


@pytest.fixture
def source(tmp_path: Path) -> SourceRepo:
    """A repository with one commit on main."""
    path = tmp_path / "source"
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    repo = SourceRepo(path)
    repo.commit({"README": "hello\n", ".gitignore": "cache/\n"})
    return repo


# --- agents ----------------------------------------------------------------------------------


@pytest.fixture
def make_agent(
    register_agent: RegisterAgent,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> Iterator[MakeAgent]:
    """Register a server and make its Agent (``make_agent("build2", ["gpu"], lease_seconds=6)``).

    ``labels`` are the operator's; ``reports`` those the agent reports (its ``--labels``).
    """
    made: list[Agent] = []

    def make(
        name: str = "build1",
        labels: Sequence[str] = (),
        reports: Sequence[str] | None = None,
        **options: Any,
    ) -> Agent:
        registered = register_agent(name, labels)
        reported = None if reports is None else tuple(reports)
        chosen = {"cancel_grace": 1.0, "poll_interval": 0.05, "labels": reported, **options}
        agent = Agent(registered.client, AgentOptions(name=name, workdir=tmp_path / name, **chosen))
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.request_stop()
        agent.request_stop()
        agent.close()


def wait_for(check: Callable[[], Any], *, timeout: float = 10.0, what: str = "it") -> Any:
    """Poll check() until it returns something truthy; fail after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def output_of(client: Client, job_id: int) -> list[str]:
    """The build output lines in a job's log."""
    return [entry.message for entry in client.log_entries(job_id) if entry.kind == "output"]


def wait_for_output(client: Client, job_id: int, line: str, timeout: float = 10.0) -> None:
    """Wait until the job's log has the output line (the build got that far)."""
    wait_for(lambda: line in output_of(client, job_id), timeout=timeout, what=repr(line))


class Background:
    """Run a function in a thread; ``result()`` joins it with a bound."""

    def __init__(self, function: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None

        def target() -> None:
            try:
                self.value = function()
            except BaseException as exc:  # handed to the test thread by result()
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def result(self, timeout: float = 20.0) -> Any:
        """The function's return value (its exception is raised here)."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"still running after {timeout} s"
        if self.error is not None:
            raise self.error
        return self.value


# --- processes -------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether pid is a live process (a zombie counts as dead: it runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is pgid."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def read_pids(path: Path) -> list[int]:
    """Pids a build wrote, one a line."""
    return [int(line) for line in path.read_text().split()]


def assert_gone(pids: Sequence[int], *, group: int | None = None, timeout: float = 3.0) -> None:
    """Every pid (and every member of group) is gone within timeout seconds."""
    wait_for(
        lambda: not any(alive(pid) for pid in pids) and (group is None or not group_members(group)),
        timeout=timeout,
        what=f"processes {list(pids)} to be gone",
    )


def claimed_elsewhere(client: Client, name: str) -> Job:
    """Claim the next job as server name (a second agent taking over), insisting there is one."""
    job = client.claim_job(name)
    assert job is not None
    return job
