"""Branch settings, check-updates, queue-all and the signed push webhook over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.config import Settings
from buildcoord.errors import Forbidden
from gitrepos import commit, git
from inprocess import ADMIN_TOKEN, API, bearer, error_of
from store_rows import StoreState

from .push_webhook import WEBHOOK, push_payload, queued, signed, webhook_settings


@pytest.fixture
def settings() -> Settings:
    """Settings with a webhook secret and no quiet period (a push is queued at once)."""
    return webhook_settings()


@pytest.fixture
def serve_origin_as(monkeypatch: pytest.MonkeyPatch, origin: Path) -> Callable[[str], None]:
    """Make git read origin wherever it is asked for a URL (git's url.<base>.insteadOf), so a
    branch set up from that URL has a real repository behind it."""

    def serve(url: str) -> None:
        monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
        monkeypatch.setenv("GIT_CONFIG_KEY_0", f"url.{origin}.insteadOf")
        monkeypatch.setenv("GIT_CONFIG_VALUE_0", url)

    return serve


def test_a_signed_push_queues_the_pushed_commit_once(
    http: TestClient, operator: Client, origin: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    new = commit(origin)
    body = push_payload("main", new)
    first = http.post(WEBHOOK, content=body, headers=signed(body))
    again = http.post(WEBHOOK, content=body, headers=signed(body))
    assert first.status_code == 202, first.text
    assert (first.json()["outcome"], first.json()["commit"]) == ("queued", new)
    assert again.json()["outcome"] == "unchanged"
    assert queued(operator, "main") == [new]


def test_a_signed_push_queues_a_job_triggered_by_push(
    http: TestClient, operator: Client, origin: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    body = push_payload("main", commit(origin))
    response = http.post(WEBHOOK, content=body, headers=signed(body))
    assert response.status_code == 202, response.text
    assert operator.get_job(response.json()["job_id"]).trigger == "push"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": "sha1=abc"},
        "wrong secret",
    ],
    ids=["missing", "wrong", "malformed", "other-secret"],
)
def test_a_push_without_a_valid_signature_is_refused_and_queues_nothing(
    http: TestClient,
    operator: Client,
    origin: Path,
    store_state: StoreState,
    headers: dict[str, str] | str,
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    body = push_payload("main", commit(origin))
    before = store_state()
    sent = signed(body, "another-secret") if isinstance(headers, str) else headers
    response = http.post(WEBHOOK, content=body, headers=sent)
    assert "Signature" in error_of(response, 401) or "signature" in response.text
    assert store_state() == before


def test_a_signature_over_a_different_body_is_refused(
    http: TestClient, operator: Client, origin: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    new = commit(origin)
    headers = signed(push_payload("main", new))
    tampered = push_payload("main", new).replace(b"main", b"evil")
    error_of(http.post(WEBHOOK, content=tampered, headers=headers), 401)
    assert queued(operator, "main") == []


def test_the_webhook_needs_no_bearer_token_but_ignores_one(
    http: TestClient, operator: Client, origin: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    body = push_payload("main", commit(origin))
    headers = {**signed(body), **bearer("not-a-token")}
    assert http.post(WEBHOOK, content=body, headers=headers).status_code == 202


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (lambda new: push_payload("unrelated", new), "no such branch is set up"),
        (lambda new: push_payload("main", "0" * 40), "deleted the branch"),
        (
            lambda new: push_payload("main", new).replace(b"refs/heads/", b"refs/tags/"),
            "not a push",
        ),
        (lambda new: json.dumps({"zen": "ping"}).encode(), "not a push"),
    ],
    ids=["unknown-branch", "deletion", "tag", "ping"],
)
def test_pushes_that_build_nothing_are_accepted_and_ignored(
    http: TestClient, operator: Client, origin: Path, payload: Any, detail: str
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    body = payload(commit(origin))
    response = http.post(WEBHOOK, content=body, headers=signed(body))
    assert response.status_code == 202, response.text
    assert response.json()["outcome"] == "ignored"
    assert detail in response.json()["detail"]
    assert queued(operator, "main") == []


def test_a_push_to_a_disabled_branch_is_ignored(
    http: TestClient, operator: Client, origin: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make", enabled=False)
    body = push_payload("main", commit(origin))
    response = http.post(WEBHOOK, content=body, headers=signed(body))
    assert response.json()["outcome"] == "ignored"
    assert queued(operator, "main") == []


def test_a_push_from_another_repository_does_not_build_a_branch_set_up_from_a_url(
    http: TestClient, operator: Client, origin: Path, serve_origin_as: Callable[[str], None]
) -> None:
    serve_origin_as("https://git.example.invalid/mine.git")
    operator.add_branch("main", repo="https://git.example.invalid/mine.git", command="make")
    new = commit(origin)
    body = push_payload("main", new, url="https://git.example.invalid/theirs.git")
    response = http.post(WEBHOOK, content=body, headers=signed(body))
    assert response.json()["outcome"] == "ignored"
    mine = push_payload("main", new, url="https://git.example.invalid/mine.git")
    response = http.post(WEBHOOK, content=mine, headers=signed(mine))
    assert response.json()["outcome"] == "queued"


def test_a_payload_that_is_not_json_is_refused(http: TestClient) -> None:
    body = b"not json"
    error_of(http.post(WEBHOOK, content=body, headers=signed(body)), 422)


def test_branch_settings_are_set_and_shown(operator: Client, origin: Path) -> None:
    added = operator.add_branch(
        "main", repo=str(origin), command="make", auto_build=False, schedule="0 3 * * *"
    )
    assert (added.auto_build, added.schedule, added.enabled) == (False, "0 3 * * *", True)
    assert added.seen_commit == git(origin, "rev-parse", "main")
    assert added.next_scheduled_at is not None
    changed = operator.update_branch("main", enabled=False, schedule="", auto_build=True)
    assert (changed.enabled, changed.schedule, changed.auto_build) == (False, None, True)
    assert changed.next_scheduled_at is None


def test_an_invalid_schedule_is_a_422_with_the_reason(operator: Client, http: TestClient) -> None:
    body = {"name": "main", "repo": "/srv/repo", "schedule": "61 * * * *"}
    message = error_of(http.post(f"{API}/branches", json=body, headers=bearer(ADMIN_TOKEN)), 422)
    assert "outside 0-59" in message


def test_check_updates_and_queue_all_queue_each_new_tip_once(
    operator: Client, origin: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    new = commit(origin)
    [check] = operator.check_branch_updates()
    assert (check.outcome, check.commit) == ("queued", new)
    assert [c.outcome for c in operator.queue_all_branches()] == ["known"]
    assert queued(operator, "main") == [new]


def test_check_updates_needs_an_operator(connect: Any, operator: Client) -> None:
    issued = operator.create_token("dashboard", kind="read")
    with pytest.raises(Forbidden, match="operator"):
        connect(issued.secret).check_branch_updates()


@pytest.mark.parametrize("settings", [webhook_settings(branch_quiet_seconds=15)])
def test_pushes_in_a_burst_are_queued_once_the_branch_is_quiet(
    http: TestClient, operator: Client, origin: Path, coordinator: Any, clock: Any
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    for _ in range(3):
        body = push_payload("main", commit(origin))
        response = http.post(WEBHOOK, content=body, headers=signed(body))
        assert response.json()["outcome"] == "waiting"
        clock.advance(5)
    newest = git(origin, "rev-parse", "main")
    clock.advance(15)
    assert [c.outcome for c in coordinator.branch_watch.step()] == ["queued"]
    assert queued(operator, "main") == [newest]


@pytest.mark.parametrize("settings", [webhook_settings(branch_quiet_seconds=15)])
def test_a_push_to_a_branch_whose_tip_was_never_read_is_built_after_the_quiet_period(
    http: TestClient,
    operator: Client,
    origin: Path,
    tmp_path: Path,
    coordinator: Any,
    clock: Any,
) -> None:
    moved = tmp_path / "moved"
    origin.rename(moved)  # unreachable when the branch is added: no tip recorded
    operator.add_branch("main", repo=str(origin), command="make")
    moved.rename(origin)
    new = commit(origin)
    body = push_payload("main", new)
    response = http.post(WEBHOOK, content=body, headers=signed(body))
    assert response.json()["outcome"] == "waiting"
    clock.advance(15)
    assert [(c.outcome, c.commit) for c in coordinator.branch_watch.step()] == [("queued", new)]
    assert queued(operator, "main") == [new]
    assert coordinator.branch_watch.due() is False


SAME = "https://git.example.invalid/o/r.git"
SAME_IPV6 = "https://[2001:db8::1]/o/r.git"


@pytest.mark.parametrize(
    ("repo", "pushed"),
    [
        ("ssh://git@git.example.invalid/o/r.git", SAME),
        ("ssh://git@git.example.invalid:22/o/r", SAME),
        ("git@git.example.invalid:o/r.git", SAME),
        ("git.example.invalid:o/r", SAME),
        ("HTTPS://Git.Example.invalid/O/R/", SAME),
        ("ssh://git@[2001:DB8::1]:22/o/r.git", SAME_IPV6),
        ("git@[2001:db8::1]:o/r", SAME_IPV6),
        ("[2001:db8::1]:o/r", SAME_IPV6),
        ("file:///srv/mirrors/r.git", SAME),  # a local mirror: matched by branch name
    ],
)
def test_a_push_builds_a_branch_set_up_from_another_url_of_the_same_repository(
    http: TestClient,
    operator: Client,
    origin: Path,
    serve_origin_as: Callable[[str], None],
    repo: str,
    pushed: str,
) -> None:
    serve_origin_as(repo)
    operator.add_branch("main", repo=repo, command="m")
    new = commit(origin)
    body = push_payload("main", new, url=pushed)
    response = http.post(WEBHOOK, content=body, headers=signed(body))
    assert (response.json()["outcome"], response.json()["commit"]) == ("queued", new)


@pytest.mark.parametrize(
    ("repo", "pushed"),
    [
        ("git@other.example.invalid:o/r.git", SAME),
        ("ssh://git@[2001:db8::2]:22/o/r.git", "ssh://git@[2001:db8::1]:22/o/r.git"),
        ("git@[2001:db8::2]:o/r.git", "ssh://git@[2001:db8::1]:22/o/r.git"),
    ],
)
def test_a_push_of_a_same_named_repository_on_another_host_builds_nothing(
    http: TestClient, operator: Client, repo: str, pushed: str
) -> None:
    operator.add_branch("main", repo=repo, command="m")
    body = push_payload("main", "1" * 40, url=pushed)
    response = http.post(WEBHOOK, content=body, headers=signed(body))
    assert response.json()["outcome"] == "ignored"
    assert queued(operator, "main") == []


def test_a_push_builds_a_branch_set_up_from_its_repository_url_with_credentials(
    http: TestClient, operator: Client, origin: Path, serve_origin_as: Callable[[str], None]
) -> None:
    url = "https://git.example.invalid/o/r.git"
    serve_origin_as("https://builder:s3cret@git.example.invalid/o/r")
    operator.add_branch("main", repo="https://builder:s3cret@git.example.invalid/o/r", command="m")
    new = commit(origin)
    body = push_payload("main", new, url=url)
    response = http.post(WEBHOOK, content=body, headers=signed(body))
    assert (response.json()["outcome"], response.json()["commit"]) == ("queued", new)
    other = push_payload("main", "2" * 40, url="https://git.example.invalid/o/other.git")
    response = http.post(WEBHOOK, content=other, headers=signed(other))
    assert response.json()["outcome"] == "ignored"
    assert "s3cret" not in response.text
