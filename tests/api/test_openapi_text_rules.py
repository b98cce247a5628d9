"""The OpenAPI document declares every text rule the services enforce, and they agree: a
pattern accepts exactly what its validator accepts, and a text at its declared maximum length
is taken where one character more gets 422 and changes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from buildcoord import validation
from buildcoord.client import Client
from buildcoord.errors import InvalidInput
from inprocess import (
    ADMIN_TOKEN,
    API,
    RegisterAgent,
    bearer,
    error_of,
    with_value,
)
from store_rows import StoreState

OPERATOR = bearer(ADMIN_TOKEN)
SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

FREE_TEXT = {
    ("LogEntryIn", "message"): "cut to 20,000 characters, never refused (the description says so)",
    ("BranchIn", "schedule"): "a cron expression: the parser names what is wrong",
    ("BranchChange", "schedule"): "a cron expression: the parser names what is wrong",
    ("OrderReport", "error"): "an agent's own error text",
}
"""Text fields with no declared length or pattern, and why."""


def _string_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The string schemas a property may take: itself, its anyOf choices, its items."""
    found = []
    for choice in schema.get("anyOf", [schema]):
        if choice.get("type") == "string":
            found.append(choice)
        if choice.get("type") == "array":
            found.extend(_string_schemas(choice["items"]))
    return found


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    from types import SimpleNamespace

    from buildcoord.config import Settings
    from buildcoord.web.app import create_app

    app = create_app(SimpleNamespace(settings=Settings()))  # type: ignore[arg-type]
    return app.openapi()


def _request_bodies(document: dict[str, Any]) -> set[str]:
    names = set()
    for operations in document["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                names.add(media["schema"]["$ref"].rsplit("/", 1)[1])
    return names


def _property(document: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    [schema] = _string_schemas(document["components"]["schemas"][model]["properties"][field])
    return schema


def test_every_text_field_of_a_request_body_declares_its_length_pattern_or_choices(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    bodies = _request_bodies(document)
    bodies |= {"ArtifactIn", "LogEntryIn", "MetricsIn"}  # nested in CompleteIn, LogIn, HeartbeatIn
    undeclared = sorted(
        (model, field)
        for model in bodies
        for field, schema in schemas[model].get("properties", {}).items()
        for text in _string_schemas(schema)
        if not {"pattern", "maxLength", "enum"} & set(text) and (model, field) not in FREE_TEXT
    )
    assert undeclared == []


# --- patterns: the document's regular expression and the validator accept the same text ---------


def _documented_pattern(schema: dict[str, Any]) -> re.Pattern[str]:
    """The document's pattern as Python matches it: ECMA's ``$`` has no trailing-newline
    exception, so the anchors become a full match."""
    pattern: str = schema["pattern"]
    assert pattern.startswith("^(?:"), pattern
    assert pattern.endswith(")$"), pattern
    return re.compile(pattern[4:-2])


def _accepts(check: Callable[[str], object], value: str) -> bool:
    try:
        check(value)
    except InvalidInput:
        return False
    return True


PATTERNS: dict[str, tuple[str, str, Callable[[str], object]]] = {
    "server name": ("ServerIn", "name", validation.server_name),
    "claiming server": ("ClaimIn", "server", validation.server_name),
    "lock holder": ("LockAcquireIn", "holder", validation.server_name),
    "message sender": ("MessageIn", "sender", validation.server_name),
    "message recipient": (
        "MessageIn",
        "recipient",
        lambda value: value == "all" or validation.server_name(value),
    ),
    "server label": ("ServerIn", "labels", lambda value: validation.server_labels([value])),
    "reported label": ("HeartbeatIn", "labels", lambda value: validation.server_labels([value])),
    "job label": ("JobIn", "labels", lambda value: validation.labels([value])),
    "branch label": ("BranchIn", "labels", lambda value: validation.labels([value])),
    "commit": ("JobIn", "commit", validation.commit_id),
    "trigger": ("JobIn", "trigger", validation.trigger),
    "md5": ("ArtifactIn", "md5", lambda value: validation.digest(value, name="md5", where="x")),
    "sha256": (
        "ArtifactIn",
        "sha256",
        lambda value: validation.digest(value, name="sha256", where="x"),
    ),
}

# Text near the rules: the rules' own characters, and a few that must be refused.
NEARBY = st.text(alphabet="aZ09._-=:/+ \n\tserv=all" + "é", max_size=70)


@pytest.mark.parametrize("what", sorted(PATTERNS))
def test_a_documented_pattern_accepts_exactly_what_its_validator_accepts(
    document: dict[str, Any], what: str
) -> None:
    model, field, check = PATTERNS[what]
    pattern = _documented_pattern(_property(document, model, field))

    @settings(
        max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(value=st.one_of(st.from_regex(pattern, fullmatch=True), NEARBY, st.text(max_size=130)))
    def agree(value: str) -> None:
        assert (pattern.fullmatch(value) is not None) == _accepts(check, value), repr(value)

    agree()


def test_a_trailing_newline_matches_neither_the_document_nor_the_validator(
    document: dict[str, Any],
) -> None:
    pattern = _documented_pattern(_property(document, "ServerIn", "name"))
    assert pattern.fullmatch("build1\n") is None
    assert not _accepts(validation.server_name, "build1\n")


# --- lengths: the declared maximum is taken, one more character is refused ----------------------

# what: (model, field, path with {job} for a running job, body with "VALUE" for the text)
LENGTHS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "branch of a job": ("JobIn", "branch", "/jobs", {"branch": "VALUE", "commit": "abc1234"}),
    "cancel reason": ("CancelIn", "reason", "/jobs/{job}/cancel", {"reason": "VALUE"}),
    "failure reason": (
        "CompleteIn",
        "reason",
        "/jobs/{job}/complete",
        {"status": "failed", "reason": "VALUE"},
    ),
    "artifact directory": (
        "CompleteIn",
        "artifact_root",
        "/jobs/{job}/complete",
        {
            "status": "succeeded",
            "artifact_root": "VALUE",
            "manifest": [{"path": "app.jar", "size": 3, "sha256": SHA256}],
        },
    ),
    "artifact path": (
        "ArtifactIn",
        "path",
        "/jobs/{job}/complete",
        {
            "status": "succeeded",
            "artifact_root": "/srv/out",
            "manifest": [{"path": "VALUE", "size": 3, "sha256": SHA256}],
        },
    ),
    "link target": (
        "ArtifactIn",
        "link_target",
        "/jobs/{job}/complete",
        {
            "status": "succeeded",
            "artifact_root": "/srv/out",
            "manifest": [{"path": "current", "size": 0, "kind": "symlink", "link_target": "VALUE"}],
        },
    ),
    "lock name": ("LockAcquireIn", "name", "/locks/acquire", {"name": "VALUE", "holder": "ci"}),
    "message subject": (
        "MessageIn",
        "subject",
        "/messages",
        {"sender": "ops", "recipient": "all", "subject": "VALUE"},
    ),
    "message body": (
        "MessageIn",
        "body",
        "/messages",
        {"sender": "ops", "recipient": "all", "subject": "hello", "body": "VALUE"},
    ),
    "token name": ("TokenIn", "name", "/tokens", {"name": "VALUE", "kind": "read"}),
    "agent problem": (
        "MetricsIn",
        "problems",
        "/servers/build1/heartbeat",
        {"metrics": {"problems": ["VALUE"]}},
    ),
    "quarantine reason": (
        "QuarantineIn",
        "reason",
        "/servers/build1/quarantine",
        {"reason": "VALUE"},
    ),
    "silence subject": (
        "SilenceIn",
        "subject",
        "/alerts/silences",
        {"rule": "disk_low", "subject": "VALUE", "seconds": 60.0},
    ),
    "silence comment": (
        "SilenceIn",
        "comment",
        "/alerts/silences",
        {"rule": "disk_low", "seconds": 60.0, "comment": "VALUE"},
    ),
    "agent version": (
        "HeartbeatIn",
        "agent_version",
        "/servers/build1/heartbeat",
        {"agent_version": "VALUE"},
    ),
    "repository": ("BranchIn", "repo", "/branches", {"name": "dev", "repo": "VALUE"}),
    "build command": (
        "BranchIn",
        "command",
        "/branches",
        {"name": "dev", "repo": "/srv/repo", "command": "VALUE"},
    ),
}


@pytest.fixture
def running_job(operator: Client, register_agent: RegisterAgent) -> int:
    """A job running on build1 (its id)."""
    agent = register_agent("build1")
    operator.submit_job("main", "abc1234")
    job = agent.client.claim_job("build1")
    assert job is not None
    return job.id


def _send(http: TestClient, what: str, job: int, length: int) -> Any:
    _, _, path, body = LENGTHS[what]
    return http.post(
        API + path.format(job=job), json=with_value(body, "a" * length), headers=OPERATOR
    )


@pytest.mark.parametrize("what", sorted(LENGTHS))
def test_text_one_character_over_its_declared_maximum_gets_422_and_changes_nothing(
    http: TestClient, document: dict[str, Any], running_job: int, store_state: StoreState, what: str
) -> None:
    model, field, _, _ = LENGTHS[what]
    maximum = _property(document, model, field)["maxLength"]
    before = store_state()

    error_of(_send(http, what, running_job, maximum + 1), 422)

    assert store_state() == before


@pytest.mark.parametrize("what", sorted(LENGTHS))
def test_text_at_its_declared_maximum_is_taken(
    http: TestClient, document: dict[str, Any], running_job: int, what: str
) -> None:
    model, field, _, _ = LENGTHS[what]
    maximum = _property(document, model, field)["maxLength"]

    response = _send(http, what, running_job, maximum)

    assert response.status_code in (200, 201), response.text


def test_every_declared_maximum_length_of_a_request_body_is_probed(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    declared = {
        (model, field)
        for model, schema in schemas.items()
        if model.endswith("In")
        for field, prop in schema.get("properties", {}).items()
        for text in _string_schemas(prop)
        if "maxLength" in text
    }
    probed = {(model, field) for model, field, _, _ in LENGTHS.values()}
    # Covered elsewhere: branch names by git's ref rules (test_branches_api), and the same
    # branch or reason types reused by other bodies.
    elsewhere = {
        ("BranchIn", "name"),
        ("BranchCheckIn", "branches"),
        ("CleanupIn", "branch"),
        ("TagCleanupIn", "branch"),
        ("LockRenewIn", "name"),
        ("LockReleaseIn", "name"),
    }
    assert declared - probed - elsewhere == set()
