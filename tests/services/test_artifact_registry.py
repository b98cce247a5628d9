"""The artifact and rollback registries, comparisons and orders on both backends."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from buildcoord.clock import FakeClock
from buildcoord.errors import Conflict, Forbidden, InvalidInput, NotFound
from buildcoord.models import ArtifactFile, Job, Principal
from buildcoord.services.coordinator import Coordinator

from .conftest import RegisterServer

COMMIT = "a" * 40

Build = Callable[..., Job]


def files(content: str) -> list[ArtifactFile]:
    return [
        ArtifactFile(
            path="app.deb", size=len(content), sha256=hashlib.sha256(content.encode()).hexdigest()
        ),
        ArtifactFile(path="docs/readme.txt", size=3, sha256="f" * 64),
    ]


@pytest.fixture
def build(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer, clock: FakeClock
) -> Build:
    """Build one job of main on a server to success, reporting a manifest."""
    coordinator.branches.add("main", repo="/nowhere", command="make", by=operator)
    agents: dict[str, Principal] = {}

    def run(server: str = "build1", content: str = "same", status: str = "succeeded") -> Job:
        agent = agents.get(server) or agents.setdefault(server, register_server(server))
        job = coordinator.queue.submit("main", COMMIT, by=operator)
        claimed = coordinator.queue.claim_next(server, by=agent)
        assert claimed is not None
        assert claimed.id == job.id
        clock.advance(1)
        return coordinator.queue.complete(
            job.id,
            status=status,
            server=server,
            fencing_token=claimed.fencing_token,
            manifest=files(content),
            artifact_root=f"/work/{server}/artifacts/main/{job.id}",
            by=agent,
        )

    return run


def test_a_finished_build_with_a_manifest_is_registered_with_its_counts(
    coordinator: Coordinator, operator: Principal, build: Build
) -> None:
    job = build()
    kept = coordinator.artifacts.get(job.id, by=operator)
    assert (kept.server, kept.branch, kept.commit) == ("build1", "main", COMMIT)
    assert (kept.file_count, kept.total_bytes) == (2, 7)
    assert kept.root == f"/work/build1/artifacts/main/{job.id}"
    assert kept.last_good is True


def test_a_success_enters_the_rollback_registry_with_a_pending_tag_and_an_order(
    coordinator: Coordinator, operator: Principal, build: Build
) -> None:
    job = build()
    good = coordinator.rollback.last_good("main", by=operator)
    assert good.job_id == job.id
    assert good.tag_state == "pending"
    assert good.tag is not None
    assert good.tag.startswith("build-success-main-")
    [order] = coordinator.orders.list_orders(server="build1", by=operator)
    assert order.kind == "tag.create"
    assert order.params["tag"] == good.tag
    assert "Commit: " + COMMIT in order.params["message"]


def test_two_successes_in_one_second_get_distinct_tags(
    coordinator: Coordinator, operator: Principal, build: Build, clock: FakeClock
) -> None:
    first = build()
    clock.advance(-1)  # the second finishes within the same second as the first
    second = build()
    tags = {g.tag for g in coordinator.rollback.list_builds("main", by=operator)}
    assert len(tags) == 2
    assert first.id != second.id


def test_a_failed_build_is_never_last_good(
    coordinator: Coordinator, operator: Principal, build: Build
) -> None:
    good = build()
    build(status="failed")
    assert coordinator.rollback.last_good("main", by=operator).job_id == good.id


def test_retention_orders_removal_past_the_newest_five_per_branch_and_server(
    coordinator: Coordinator, operator: Principal, build: Build
) -> None:
    jobs = [build() for _ in range(7)]
    orders = [
        o
        for o in coordinator.orders.list_orders(server="build1", by=operator)
        if o.kind == "artifacts.remove"
    ]
    doomed = [item["job_id"] for order in orders for item in order.params["sets"]]
    assert doomed == [jobs[0].id, jobs[1].id]


def test_retention_never_plans_a_pinned_or_last_good_build(
    coordinator: Coordinator, operator: Principal, build: Build
) -> None:
    first = build()
    coordinator.artifacts.pin(first.id, True, by=operator)
    later = [build() for _ in range(3)]
    failed = [build(status="failed") for _ in range(2)]
    plan = coordinator.artifacts.cleanup(keep=1, dry_run=True, by=operator)
    planned = {item.job_id for item in plan.removals}
    assert first.id not in planned  # pinned
    assert later[-1].id not in planned  # last good
    assert failed[-1].id not in planned  # the newest kept by --keep 1
    assert planned == {later[0].id, later[1].id, failed[0].id}


def test_an_agent_report_marks_sets_removed_and_is_accepted_once(
    coordinator: Coordinator, operator: Principal, build: Build
) -> None:
    jobs = [build() for _ in range(2)]
    plan = coordinator.artifacts.cleanup(keep=1, by=operator)
    [order] = plan.orders
    agent = Principal("agent", "agent build1", server="build1")
    result = {"removed": [{"job_id": jobs[0].id, "path": "x", "freed_bytes": 7}]}
    coordinator.orders.report(
        "build1", order.id, status="done", result=result, error=None, by=agent
    )

    gone = coordinator.artifacts.get(jobs[0].id, by=operator)
    assert gone.removed_at is not None
    assert gone.freed_bytes == 7
    with pytest.raises(Conflict):
        coordinator.orders.report(
            "build1", order.id, status="done", result=result, error=None, by=agent
        )


def test_an_agent_may_not_report_another_servers_order(
    coordinator: Coordinator, operator: Principal, build: Build, register_server: RegisterServer
) -> None:
    build()
    [order] = coordinator.orders.list_orders(server="build1", by=operator)
    other = register_server("build2")
    with pytest.raises(Forbidden):
        coordinator.orders.report(
            "build1", order.id, status="done", result={}, error=None, by=other
        )
    with pytest.raises(NotFound):
        coordinator.orders.report(
            "build2", order.id, status="done", result={}, error=None, by=other
        )


def test_two_servers_alike_are_recorded_reproducible_once(
    coordinator: Coordinator, operator: Principal, build: Build
) -> None:
    a = build("build1")
    b = build("build2")
    [record] = coordinator.comparisons.list_comparisons(branch="main", by=operator)
    assert (record.job_a, record.job_b, record.reproducible) == (a.id, b.id, True)
    assert record.summary["counts"]["identical"] == 2


def test_two_servers_differing_are_recorded_not_reproducible(
    coordinator: Coordinator, operator: Principal, build: Build
) -> None:
    build("build1", content="one")
    build("build2", content="two")
    [record] = coordinator.comparisons.list_comparisons(by=operator)
    assert record.reproducible is False
    assert record.summary["counts"]["different"] == 1


def test_a_tag_cleanup_keeps_the_newest_and_the_registry_follows_the_agents_report(
    coordinator: Coordinator, operator: Principal, build: Build
) -> None:
    jobs = [build() for _ in range(3)]
    agent = Principal("agent", "agent build1", server="build1")
    for order in coordinator.orders.pending("build1", by=agent):
        coordinator.orders.report(
            "build1", order.id, status="done", result={"pushed": False}, error=None, by=agent
        )
    plan = coordinator.rollback.cleanup(keep=1, by=operator)
    assert [g.job_id for g in plan.removals] == [jobs[1].id, jobs[0].id]
    [order] = plan.orders
    deleted = [g.tag for g in plan.removals]
    coordinator.orders.report(
        "build1", order.id, status="done", result={"deleted": deleted}, error=None, by=agent
    )
    assert [g.job_id for g in coordinator.rollback.list_builds("main", by=operator)] == [jobs[2].id]
    assert coordinator.rollback.last_good("main", by=operator).job_id == jobs[2].id


def test_bad_cleanup_input_is_refused(
    coordinator: Coordinator, operator: Principal, reader: Principal
) -> None:
    with pytest.raises(InvalidInput):
        coordinator.artifacts.cleanup(keep=-1, by=operator)
    with pytest.raises(InvalidInput):
        coordinator.rollback.cleanup(keep=0, by=operator)
    with pytest.raises(Forbidden):
        coordinator.artifacts.cleanup(keep=5, by=reader)
    with pytest.raises(NotFound):
        coordinator.artifacts.pin(999, True, by=operator)
    with pytest.raises(NotFound):
        coordinator.rollback.show("build-success-none", by=operator)


def test_many_successes_within_seconds_each_get_a_tag_in_the_documented_format(
    coordinator: Coordinator, operator: Principal, build: Build, clock: FakeClock
) -> None:
    jobs = []
    for _ in range(5):
        jobs.append(build())
        clock.advance(-1)  # every build finishes within the same second
    tags = [g.tag for g in coordinator.rollback.list_builds("main", limit=10, by=operator)]
    assert len(set(tags)) == 5
    assert all(
        tag is not None and len(tag) == len("build-success-main-20261126T000000Z") for tag in tags
    )


def test_the_artifact_list_marks_the_newest_success_of_each_branch_as_last_good(
    coordinator: Coordinator,
    operator: Principal,
    register_server: RegisterServer,
    clock: FakeClock,
    build: Build,
) -> None:
    coordinator.branches.add("dev", repo="/nowhere", command="make", by=operator)
    agent = register_server("build2")

    def build_dev(status: str) -> Job:
        job = coordinator.queue.submit("dev", COMMIT, by=operator)
        claimed = coordinator.queue.claim_next("build2", by=agent)
        assert claimed is not None
        clock.advance(1)
        return coordinator.queue.complete(
            job.id,
            status=status,
            server="build2",
            fencing_token=claimed.fencing_token,
            manifest=files("dev"),
            artifact_root=f"/work/build2/artifacts/dev/{job.id}",
            by=agent,
        )

    main = [build(), build(), build(status="failed")]
    dev = [build_dev("succeeded"), build_dev("failed")]

    listed = coordinator.artifacts.list_sets(by=operator)
    assert {item.job_id for item in listed if item.last_good} == {main[1].id, dev[0].id}
    assert coordinator.artifacts.get(main[0].id, by=operator).last_good is False
    assert coordinator.artifacts.get(dev[0].id, by=operator).last_good is True
