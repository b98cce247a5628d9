"""The builds of ``buildcoord up --demo``: branches set up, jobs queued, and the verdict.

The same commit of ``main`` is queued once per server, each job pinned to its server by
the server's own label, so that both servers build it whatever the timing; the verdict is
the comparison the coordinator recorded of what they produced (SHA-256 per artifact).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from buildcoord.client import Client
from buildcoord.errors import NotFound
from buildcoord.models import FINISHED_STATUSES, Job
from buildcoord.up.demo.comparison import compare_builds, verdict_lines
from buildcoord.up.demo.repository import BUILD_COMMAND, FEATURE, MAIN, DemoRepository
from buildcoord.up.status import job_result


@dataclass(frozen=True, slots=True)
class DemoBuilds:
    """The demo's jobs: main at one commit per server, and the feature branch."""

    commit: str
    main_jobs: dict[str, int]
    feature_job: int

    @property
    def title(self) -> str:
        """``main @ 1a2b3c4d5e6f``."""
        return f"{MAIN} @ {self.commit[:12]}"


def ensure_branch(client: Client, name: str, *, repo: str, command: str) -> None:
    """Set up a branch, replacing one of that name with another repository or command."""
    try:
        branch = client.get_branch(name)
    except NotFound:
        branch = None
    if branch is not None:
        if (branch.repo, branch.command) == (repo, command):
            return
        client.remove_branch(name)
    client.add_branch(name, repo=repo, command=command)


def queue_demo_builds(
    client: Client, repository: DemoRepository, pinned: Mapping[str, str]
) -> DemoBuilds:
    """Set up both branches and queue main once per server (pinned: server -> its label)."""
    for branch in (MAIN, FEATURE):
        ensure_branch(client, branch, repo=str(repository.path), command=BUILD_COMMAND)
    commit = repository.commits[MAIN]
    main_jobs = {
        server: client.submit_job(MAIN, commit, labels=[label]).id
        for server, label in pinned.items()
    }
    feature = client.submit_job(FEATURE, repository.commits[FEATURE]).id
    return DemoBuilds(commit=commit, main_jobs=main_jobs, feature_job=feature)


def verdict(client: Client, builds: DemoBuilds) -> list[str] | None:
    """None while a build of main runs; then whether both servers made the same artifacts."""
    jobs = {server: client.get_job(job_id) for server, job_id in builds.main_jobs.items()}
    if any(job.status not in FINISHED_STATUSES for job in jobs.values()):
        return None
    failed = [(server, job) for server, job in jobs.items() if job.status != "succeeded"]
    if failed:
        return [
            f"{builds.title}: the build on {server} {job_result(job)}; "
            f"see 'buildcoord log show {job.id}'"
            for server, job in failed
        ]
    return [*_comparison(client, builds, jobs), *_next_build(client)]


def _comparison(client: Client, builds: DemoBuilds, jobs: Mapping[str, Job]) -> list[str]:
    """Whether both servers' builds of main made the same bytes, and main's rollback tag."""
    (left, left_job), (right, right_job) = list(jobs.items())[:2]
    # The coordinator compared them by itself when the second build finished.
    for recorded in client.comparisons(job=left_job.id):
        if {recorded.job_a, recorded.job_b} == {left_job.id, right_job.id}:
            if recorded.job_a != left_job.id:
                left, right = right, left
            lines = verdict_lines(builds.title, left, right, recorded.summary)
            return [*lines, *_last_good(client)]
    return compare_builds(
        builds.title,
        (left, client.manifest(left_job.id)),
        (right, client.manifest(right_job.id)),
    )


def _last_good(client: Client) -> list[str]:
    """The rollback tag of main's last good build, once its agent wrote it."""
    try:
        good = client.last_good(MAIN)
    except NotFound:
        return []
    if good.tag is None or good.tag_state != "written":
        return []
    return [f"{MAIN}: last known good build is job {good.job_id}, tagged {good.tag}"]


def _next_build(client: Client) -> list[str]:
    """How long the next build of main should take, from the builds just made."""
    try:
        estimate = client.predict_duration(MAIN)
    except NotFound:  # no successful build with a duration yet
        return []
    builds = "build" if estimate.history == 1 else "builds"
    return [
        f"{MAIN}: the next build should take {estimate.p50:.1f} s "
        f"(p10-p90 {estimate.p10:.1f}-{estimate.p90:.1f} s, from {estimate.history} {builds}; "
        f"'buildcoord predict duration {MAIN}')"
    ]
