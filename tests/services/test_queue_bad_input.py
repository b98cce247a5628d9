"""The job queue refuses bad input and changes nothing."""

from __future__ import annotations

import math
from typing import Any

import pytest

from buildcoord.errors import InvalidInput
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from store_rows import StoreState

from .queue_helpers import claim, finish, submit

BAD_PRIORITIES: list[Any] = [
    0,
    11,
    -1,
    "5",
    True,
    5.0,
]  # None means "the branch's priority, else 5"
BAD_BRANCHES = [
    "a..b",
    "x.lock",
    "feature/x.lock",
    "-x",
    "a b",
    "@",
    "",
    "a~1",
    "a^b",
    "a:b",
    "a?b",
    "a*b",
    "a[b",
    "a\\b",
    "a@{b",
    "a/",
    "a.",
    "/a",
    "a//b",
    ".hidden",
    "a/.b",
    "tab\there",
    "x" * 256,
]
GOOD_BRANCHES = ["main", "feature/login-form", "release-1.2", "user@host", "a.b/c_d", "x" * 255]
BAD_COMMITS = ["", "abc123", "0" * 41, "g123456", "0123456 ", "01234-6789", "0x12345"]
BAD_DEPENDENCIES: list[Any] = [0, -3, True, "1", 1.0]
BAD_LABELS = ["has space", "a,b", "-x", "é"]


@pytest.mark.parametrize(
    ("field", "values", "message"),
    [
        pytest.param("priority", BAD_PRIORITIES, "priority", id="priority_outside_one_to_ten"),
        pytest.param("branch", BAD_BRANCHES, "branch name", id="branch_name_git_rejects"),
        pytest.param("commit", BAD_COMMITS, "invalid commit", id="commit_not_7_to_40_hex_digits"),
        pytest.param(
            "labels", [[label] for label in BAD_LABELS], "invalid label", id="malformed_label"
        ),
    ],
)
def test_it_refuses_a_bad_field_of_a_new_job_and_changes_nothing(
    coordinator: Coordinator,
    operator: Principal,
    store_state: StoreState,
    subtests: pytest.Subtests,
    field: str,
    values: list[Any],
    message: str,
) -> None:
    before = store_state()

    for value in values:
        with subtests.test(**{field: value}), pytest.raises(InvalidInput, match=message):
            submit(coordinator, operator, **{field: value})

    assert store_state() == before


def test_it_accepts_a_branch_name_git_accepts(
    coordinator: Coordinator, operator: Principal, subtests: pytest.Subtests
) -> None:
    for branch in GOOD_BRANCHES:
        with subtests.test(branch=branch):
            assert submit(coordinator, operator, branch=branch).branch == branch


def test_it_accepts_commits_of_7_and_40_hex_digits_and_stores_them_in_lower_case(
    coordinator: Coordinator, operator: Principal
) -> None:
    assert submit(coordinator, operator, commit="ABCDEF0").commit == "abcdef0"
    assert submit(coordinator, operator, commit="F" * 40).commit == "f" * 40


def test_it_refuses_a_dependency_that_is_not_a_job_id_and_changes_nothing(
    coordinator: Coordinator,
    operator: Principal,
    store_state: StoreState,
    subtests: pytest.Subtests,
) -> None:
    submit(coordinator, operator)
    before = store_state()

    for dependency in BAD_DEPENDENCIES:
        with subtests.test(dependency=dependency), pytest.raises(InvalidInput, match="dependency"):
            submit(coordinator, operator, depends_on=[dependency])

    assert store_state() == before


def test_it_refuses_to_complete_with_a_status_other_than_succeeded_or_failed(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    build1: Principal,
    subtests: pytest.Subtests,
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None

    for status in ["cancelled", "queued", "ok", ""]:
        with subtests.test(status=status), pytest.raises(InvalidInput, match="succeeded or failed"):
            finish(coordinator, job, build1, status)

    assert store.jobs.get_job(job.id) == job


def test_it_refuses_to_complete_with_a_duration_beyond_a_week(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    build1: Principal,
    subtests: pytest.Subtests,
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None

    for duration in [7 * 24 * 3600 + 0.5, 1e12, 1e308, math.inf, math.nan, -1.0]:
        with subtests.test(duration=duration), pytest.raises(InvalidInput, match="duration"):
            coordinator.queue.complete(
                job.id,
                status="succeeded",
                duration=duration,
                server="build1",
                fencing_token=job.fencing_token,
                by=build1,
            )

    assert store.jobs.get_job(job.id) == job
