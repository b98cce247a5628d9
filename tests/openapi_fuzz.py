"""Schemathesis over the live app's OpenAPI document: every operation, as an operator.

For each operation the seeded fleet is put back, then Schemathesis generates requests from
the document (valid ones, then invalid ones) and sends them to the app in process. Each
answer must be no 5xx, have a status the document declares, and a body matching the
declared schema; a refused or failed request (4xx, 5xx) must leave every table as it was.
Failures are collected, not raised, so one run lists every distinct failure (with the
shortest input that showed it); tests/api/test_openapi_fuzz.py asserts the list is empty
and bench/fuzz_api.py prints it.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.errors
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from inprocess import ADMIN_TOKEN, bearer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

SKIPPED = {
    "GET /api/v1/agents/{server}/session": "an endless event stream (the matrix covers it)",
}

State = Callable[[], Any]


@dataclass(frozen=True)
class Finding:
    """One distinct failure: where, what, and the smallest input that showed it."""

    operation: str
    check: str
    status: int
    error: str
    input: str

    def key(self) -> tuple[str, str, int, str]:
        """What makes two findings the same failure."""
        return (self.operation, self.check, self.status, self.error)


@dataclass
class Campaign:
    """Counts of a run and its distinct failures."""

    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    findings: dict[tuple[str, str, int, str], Finding] = field(default_factory=dict)

    def record(self, finding: Finding) -> None:
        """Keep finding, or the shorter input of the same failure."""
        known = self.findings.get(finding.key())
        if known is None or len(finding.input) < len(known.input):
            self.findings[finding.key()] = finding

    def summary(self) -> dict[str, Any]:
        """The run as one JSON-ready object."""
        return {
            "cases": self.cases,
            "statuses": {str(status): n for status, n in sorted(self.statuses.items())},
            "failures": len(self.findings),
            "findings": [vars(item) for item in sorted(self.findings.values(), key=Finding.key)],
        }


def describe(case: schemathesis.Case) -> str:
    """The generated parts of a request, short enough to read."""
    parts = {
        "path": case.path_parameters or None,
        "query": case.query or None,
        "body": None if isinstance(case.body, NotSet) else case.body,
    }
    text = repr({key: value for key, value in parts.items() if value is not None})
    return text if len(text) <= 400 else text[:400] + "..."


def first_line(text: str) -> str:
    """A failure message's first meaningful line, without the generated values' noise."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


def without_prefix_items(node: Any) -> Any:
    """A copy of an OpenAPI node with each tuple (``prefixItems``) as an array of any of its
    item schemas, of the same length.

    Schemathesis 4 turns ``prefixItems`` into draft-4 array-valued ``items`` and then refuses
    its own result as an invalid OpenAPI 3.1 schema (schemathesis issues 3842 and 4099).
    """
    if isinstance(node, list):
        return [without_prefix_items(item) for item in node]
    if not isinstance(node, dict):
        return node
    copied = {key: without_prefix_items(value) for key, value in node.items()}
    if "prefixItems" in copied:
        copied["items"] = {"anyOf": copied.pop("prefixItems")}
    return copied


def fuzz(
    app: FastAPI,
    *,
    examples: int,
    reseed: Callable[[], None],
    state: State,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
) -> Campaign:
    """Run examples requests per operation and mode; return what happened."""
    schema = schemathesis.openapi.from_dict(without_prefix_items(app.openapi()))
    schema.app = app
    campaign = Campaign()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if label in SKIPPED:
            continue
        reseed()
        probe = Probe(app, label, campaign, state)
        for mode in modes:
            probe.run(operation.as_strategy(generation_mode=mode), examples)
    return campaign


class Probe:
    """Sends one operation's generated cases and checks each answer."""

    def __init__(self, app: FastAPI, label: str, campaign: Campaign, state: State) -> None:
        self.app = app
        self.label = label
        self.campaign = campaign
        self.state = state
        self.last_state = state()
        self.headers = bearer(ADMIN_TOKEN)

    def run(self, strategy: Any, examples: int) -> None:
        """Send examples cases drawn from strategy, with a fixed seed."""

        @hypothesis.settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=strategy)
        def each(case: schemathesis.Case) -> None:
            self.check(case)

        # Unsatisfiable: nothing to make invalid (no parameters and no body).
        with contextlib.suppress(hypothesis.errors.Unsatisfiable):
            each()

    def check(self, case: schemathesis.Case) -> None:
        """Send case; record every way its answer is wrong."""
        self.campaign.cases += 1
        found: list[tuple[str, int, str]] = []
        try:
            response = case.call(app=self.app, headers=self.headers)
        except Exception as exc:  # the app raised: in process, a 500 arrives as its exception
            status = 500
            found.append(("ServerError", status, f"{type(exc).__name__}: {first_line(str(exc))}"))
        else:
            status = response.status_code
            try:
                case.validate_response(response, checks=CHECKS, headers=self.headers)
            except FailureGroup as group:
                for failure in group.exceptions:
                    detail = f": {response.text}" if status >= 500 else ""
                    found.append((type(failure).__name__, status, failure.title + detail))
        self.campaign.statuses[status] += 1
        now = self.state()
        if status >= 400 and now != self.last_state:
            found.append(("StateChanged", status, "a refused request changed the store"))
        self.last_state = now
        for check, code, error in found:
            self.campaign.record(
                Finding(
                    operation=self.label,
                    check=check,
                    status=code,
                    error=first_line(error),
                    input=describe(case),
                )
            )
