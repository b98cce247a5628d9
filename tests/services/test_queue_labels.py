"""The job queue's labels: which server may take which job."""

from __future__ import annotations

import pytest

from buildcoord.errors import InvalidInput
from buildcoord.models import Metrics, Principal
from buildcoord.services.coordinator import Coordinator

from .conftest import RegisterServer
from .queue_helpers import claim, claim_id, submit


def test_it_does_not_give_a_job_to_a_server_without_its_labels(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    plain = register_server("plain")
    submit(coordinator, operator, labels=["mvn"])

    assert claim(coordinator, plain) is None


def test_it_gives_a_job_to_a_server_with_all_its_labels(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    maven = register_server("maven", labels=["mvn", "os=debian"])
    job = submit(coordinator, operator, labels=["mvn"])

    assert claim_id(coordinator, maven) == job.id


def test_a_job_pinned_to_a_server_goes_to_that_server_without_any_labels_set(
    coordinator: Coordinator, operator: Principal, build1: Principal, build2: Principal
) -> None:
    job = submit(coordinator, operator, labels=["server=build1"])

    assert claim(coordinator, build2) is None
    assert claim_id(coordinator, build1) == job.id


def test_an_agent_cannot_report_a_server_label_to_take_another_servers_job(
    coordinator: Coordinator, operator: Principal, build1: Principal, build2: Principal
) -> None:
    submit(coordinator, operator, labels=["server=build2"])

    with pytest.raises(InvalidInput, match="server="):
        coordinator.servers.heartbeat(
            "build1", metrics=Metrics(), labels=["server=build2"], by=build1
        )

    assert claim(coordinator, build1) is None


def test_labels_an_agent_reports_satisfy_a_jobs_requirements(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    job = submit(coordinator, operator, labels=["mvn"])
    coordinator.servers.heartbeat("build1", metrics=Metrics(), labels=["mvn"], by=build1)

    assert claim_id(coordinator, build1) == job.id


def test_a_job_may_need_operator_and_reported_labels_together(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    build1 = register_server("build1", labels=["os=debian"])
    job = submit(coordinator, operator, labels=["mvn", "os=debian", "server=build1"])
    coordinator.servers.heartbeat("build1", metrics=Metrics(), labels=["mvn"], by=build1)

    assert claim_id(coordinator, build1) == job.id


def test_it_skips_past_many_jobs_a_server_cannot_run_to_one_it_can(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    plain = register_server("plain")
    for _ in range(40):  # more than one claim batch
        submit(coordinator, operator, priority=1, labels=["mvn"])
    runnable = submit(coordinator, operator, priority=10)

    assert claim_id(coordinator, plain) == runnable.id
